"""Waiting for a condition: one polling loop for ports, HTTP endpoints and notify messages."""

from __future__ import annotations

import subprocess
import time
from typing import Callable


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str | Callable[[], str] = "condition",
             proc: subprocess.Popen | None = None):
    """Poll until predicate() returns a truthy value (returned). OSError, ValueError and KeyError
    from predicate count as not yet. Fails (AssertionError) after timeout seconds, or at once
    when proc, if given, has exited (with the end of its stderr)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process exited ({proc.returncode}) while waiting for "
                                 f"{_text(what)}: {_stderr_tail(proc)}")
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError, KeyError) as exc:
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {_text(what)}"
                         + (f" (last error: {last_exc})" if last_exc else ""))


def _text(what) -> str:
    return what() if callable(what) else what


def _stderr_tail(proc: subprocess.Popen, chars: int = 3000) -> str:
    err = proc.communicate()[1]
    if isinstance(err, bytes):
        err = err.decode("utf-8", "replace")
    return (err or "")[-chars:]
