"""A real SRT peer: srt-live-transmit (Debian srt-tools) on loopback, and a caller that waits
for a listener to come up."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from broadcaster.transport.srt import SrtConnectError, open_srt
from tests.support.processes import stop

SLT = shutil.which("srt-live-transmit")


def start_receiver(url: str, out: Path | None = None) -> subprocess.Popen:
    """srt-live-transmit writing what it receives to out (None: discarded); listener or caller
    per url."""
    return subprocess.Popen([SLT or "srt-live-transmit", "-q", url, "file://con"],
                            stdout=out.open("wb") if out is not None else subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def stop_receiver(proc: subprocess.Popen) -> None:
    """SIGINT, so srt-live-transmit flushes what it received; killed after 5 s."""
    stop(proc, signal.SIGINT, timeout=5)


def connect_retry(url: str, deadline_s: float = 5.0):
    """open_srt, retried while the listener process is still binding (connect timeouts)."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            return open_srt(url, connect_timeout_s=1.0)
        except SrtConnectError as exc:
            if "timed out" not in str(exc) or time.monotonic() > end:
                raise
