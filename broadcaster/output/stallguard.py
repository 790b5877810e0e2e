"""Aborts an ingest connection whose write (or connect) has been blocked too long.

A stalled ingest never errors by itself: the kernel swallows seconds of media, then send()
simply blocks. A watcher thread notices a blocked mux call (which may send several times)
and aborts the connection underneath it; the blocked call then fails, and the publisher
reconnects with backoff. (The RTMP client's own send timeout is a little longer: it ends a
send nobody watches.)
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)


class StallGuard:
    def __init__(self, timeout_s: float, what: str = "write", clock: Callable[[], float] = time.monotonic):
        self.timeout_s = timeout_s
        self.what = what
        self.clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None
        self._abort: Callable[[], None] | None = None
        self.aborts = 0

    def begin(self, abort: Callable[[], None]) -> None:
        """A blocking call starts; abort() is what unblocks it."""
        with self._lock:
            self._since, self._abort = self.clock(), abort

    def end(self) -> None:
        with self._lock:
            self._since, self._abort = None, None

    def check(self, now: float) -> bool:
        """Abort the current call if it has been blocked longer than timeout_s (once)."""
        with self._lock:
            if self._since is None or now - self._since < self.timeout_s:
                return False
            abort, blocked = self._abort, now - self._since
            self._since, self._abort = None, None
            self.aborts += 1
        log.warning("ingest %s blocked for %.1f s: dropping the connection", self.what, blocked)
        if abort is not None:
            try:
                abort()
            except OSError as exc:
                log.debug("aborting the connection: %s", exc)
        return True


class StallWatcher:
    """One thread checking a few guards four times a second."""

    def __init__(self, guards: list[StallGuard], interval_s: float = 0.25):
        self.guards = guards
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stall-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            now = time.monotonic()
            for guard in self.guards:
                guard.check(now)
