import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers.nginx_rtmp import NginxRtmp

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def nginx(tmp_path):
    if not NginxRtmp.available():
        pytest.fail("nginx with libnginx-mod-rtmp is not installed (tools/bootstrap.sh installs it)")
    server = NginxRtmp(tmp_path / "nginx")
    server.start()
    yield server
    server.stop()


def broadcaster_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "broadcaster", *args]


def run_env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("BROADCASTER_STREAM_KEY", None)
    env.pop("BROADCASTER_OUTPUT", None)
    env.update(extra)
    return env


def run_broadcaster(*args: str, timeout: float = 120, env: dict | None = None, cwd: Path | None = None):
    return subprocess.run(broadcaster_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          env=env or run_env(), cwd=cwd or ROOT)


def start_broadcaster(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(broadcaster_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env or run_env(), cwd=cwd or ROOT)
