"""A real SRT peer for the tests: srt-live-transmit (Debian srt-tools) on loopback."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from pathlib import Path

SLT = shutil.which("srt-live-transmit")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_receiver(url: str, out: Path) -> subprocess.Popen:
    """srt-live-transmit writing what it receives to out (listener or caller per url)."""
    return subprocess.Popen([SLT, "-q", url, "file://con"], stdout=out.open("wb"),
                            stderr=subprocess.PIPE)


def stop(proc: subprocess.Popen) -> bytes:
    """SIGINT (srt-live-transmit flushes), kill after 5 s; returns what it printed on stderr."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.stderr.read() if proc.stderr else b""
