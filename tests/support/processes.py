"""Stopping a subprocess, and reading its output until a line says it is ready."""

from __future__ import annotations

import select
import signal
import subprocess

from tests.support.polling import wait_for


def stop(proc: subprocess.Popen, sig: int | None = signal.SIGTERM, timeout: float = 30.0):
    """Send sig (None: nothing, it ends by itself), wait up to timeout s, kill it if it has not
    ended; returns (stdout, stderr) as communicate() does (None for what was not a pipe)."""
    if sig is not None and proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def read_until(proc: subprocess.Popen, marker: str, timeout: float = 60.0) -> str:
    """Read proc's stdout (a text pipe) until a line contains marker; returns that line.
    Fails (AssertionError) if proc exits first, with the end of its stderr, or on timeout."""
    def next_line_with_marker() -> str | None:
        if select.select([proc.stdout], [], [], 0.5)[0]:
            line = proc.stdout.readline()
            return line if marker in line else None
        return None
    return wait_for(next_line_with_marker, timeout, interval=0, what=f"a line with {marker!r}", proc=proc)
