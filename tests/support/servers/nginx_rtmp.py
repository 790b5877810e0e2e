"""A real nginx-rtmp ingest on loopback (nginx with libnginx-mod-rtmp), for the tests and the
step test: one config, recording every published stream or not."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.ports import free_port, wait_port
from tests.support.processes import stop

RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


class NginxRtmp:
    """nginx-rtmp on 127.0.0.1:port; with record, every published stream is recorded as FLV
    under record_dir. meta: nginx-rtmp's `meta` (on: players get metadata nginx rebuilds;
    copy: the publisher's own onMetaData, as sent). on_publish: a URL nginx asks before it
    accepts a stream (2xx: accept; see servers.publish_auth)."""

    def __init__(self, workdir: Path, port: int | None = None, record: bool = True,
                 meta: str = "on", on_publish: str | None = None):
        self.workdir = workdir
        self.port = port or free_port()
        self.record_dir = workdir / "rec"
        if record:
            self.record_dir.mkdir(parents=True, exist_ok=True)
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        recording = (f"record all; record_path {self.record_dir}; record_unique on;" if record
                     else "record off;")
        self.conf = workdir / "nginx.conf"
        self.conf.write_text(f"""
load_module {RTMP_MODULE};
daemon off;
master_process off;
pid {workdir}/nginx.pid;
error_log {self.logs}/error.log info;
events {{ worker_connections 64; }}
rtmp {{
    access_log {self.logs}/access.log;
    server {{
        listen 127.0.0.1:{self.port};
        chunk_size 4096;
        application live {{
            live on;
            meta {meta};
            {f"on_publish {on_publish};" if on_publish else ""}
            {recording}
        }}
    }}
}}
""")
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def missing() -> str | None:
        """None when nginx and the RTMP module are installed, else what is missing."""
        if shutil.which("nginx") is None:
            return "nginx is not installed"
        if not os.path.exists(RTMP_MODULE):
            return f"{RTMP_MODULE} (libnginx-mod-rtmp) is missing"
        return None

    def url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{key}"

    def start(self) -> None:
        """Start nginx and wait until it listens; start-up errors (nginx's stderr and error
        log) are in the RuntimeError raised when it does not."""
        with (self.logs / "stderr.log").open("wb") as err:
            self.proc = subprocess.Popen(["nginx", "-p", str(self.workdir), "-c", str(self.conf),
                                          "-e", "stderr"], stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_port(self.port, proc=self.proc)
        except AssertionError as e:
            self.stop()
            tail = "".join(p.read_text(errors="replace")[-600:] for p in
                           (self.logs / "stderr.log", self.logs / "error.log") if p.exists())
            raise RuntimeError(f"nginx-rtmp did not start: {e}\n{tail.strip()}") from None

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, timeout=10)
        self.proc = None

    def recordings(self, key: str) -> list[Path]:
        return sorted(self.record_dir.glob(f"{key}*.flv"), key=lambda p: p.stat().st_mtime)
