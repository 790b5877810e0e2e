"""Free loopback ports (TCP and UDP) and waiting for a TCP listener."""

from __future__ import annotations

import socket
import subprocess

from tests.support.polling import wait_for


def _free(kind: int, host: str) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_port() -> int:
    """A TCP port free on 127.0.0.1."""
    return _free(socket.SOCK_STREAM, "127.0.0.1")


def free_udp_port() -> int:
    """A UDP port free on every interface (SRT listeners bind to all of them)."""
    return _free(socket.SOCK_DGRAM, "")


def _accepts(port: int) -> bool:
    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    return True


def wait_port(port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    """Until something accepts TCP connections on 127.0.0.1:port (fails early if proc exits)."""
    wait_for(lambda: _accepts(port), timeout, interval=0.05,
             what=f"a listener on 127.0.0.1:{port}", proc=proc)
