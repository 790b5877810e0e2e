"""ASR servers for the tests: a real AsrServer in this process (its loop on a LoopThread), or
the real `broadcaster asr-serve` command in a subprocess."""

from __future__ import annotations

import subprocess

from broadcaster.asr.server import AsrServer
from tests.support.aio import LoopThread
from tests.support.broadcaster_proc import broadcaster_cmd
from tests.support.paths import ROOT
from tests.support.processes import read_until, stop

TOKEN = "test-token-0123456789"


class RunningServer(LoopThread):
    """AsrServer(TOKEN, asr, **options) on a free loopback port; url is its ws:// address."""

    def __init__(self, asr, **options) -> None:
        super().__init__(timeout=30.0)
        self.server = AsrServer(TOKEN, asr, port=0, **options)
        self.run(self.server.start())
        self.url = f"ws://127.0.0.1:{self.server.port}"

    def close(self) -> None:
        self.run(self.server.stop())
        super().close()


def start_asr_serve(port: int, env: dict, token_env: str, *extra: str) -> subprocess.Popen:
    """`broadcaster asr-serve` on port (text pipes, extra arguments such as --language zh),
    returned once it says it is listening."""
    proc = subprocess.Popen(broadcaster_cmd("asr-serve", "--port", str(port), "--token-env", token_env, *extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        read_until(proc, "listening", timeout=60)
    except BaseException:
        stop(proc)
        raise
    return proc
