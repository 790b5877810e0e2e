"""A tiny sd_notify client: tell systemd we are ready, alive, stopping, and what we do.

Under a Type=notify unit systemd sets NOTIFY_SOCKET (a path, or '@name' for the abstract
namespace) and, with WatchdogSec=, WATCHDOG_USEC. Outside systemd every call is a no-op, so
the core calls these unconditionally. Sending never raises: a lost notification must not
take the broadcast down (systemd's own timeouts cover a notifier that cannot reach it).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

from broadcaster.redact import redact_text

log = logging.getLogger(__name__)


class SdNotifier:
    """sd_notify over the NOTIFY_SOCKET unix datagram socket; a no-op when it is unset."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET", "")
        self._address: str | bytes | None = None
        if raw.startswith("@"):
            self._address = b"\0" + raw[1:].encode()  # abstract namespace
        elif raw.startswith("/"):
            self._address = raw
        elif raw:
            log.warning("NOTIFY_SOCKET %r is neither a path nor an @abstract name; "
                        "systemd notifications are off", raw)
        self.watchdog_interval_s = _watchdog_interval(env)
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False

    @property
    def enabled(self) -> bool:
        """True when running under a unit that listens for notifications."""
        return self._address is not None

    def notify(self, state: str) -> bool:
        """Send one raw state string ("READY=1", "STATUS=..."); True when it was sent."""
        if self._address is None:
            return False
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX,
                                               socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(state.encode("utf-8"), self._address)
                return True
            except OSError as exc:
                if not self._warned:  # once: a dead socket would otherwise log every frame
                    log.warning("sd_notify failed: %s", exc)
                    self._warned = True
                return False

    def ready(self, status: str | None = None) -> bool:
        """READY=1: call once the first packet reached the ingest (and after a reload)."""
        return self.notify("READY=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))

    def watchdog(self) -> bool:
        """WATCHDOG=1: 'the media loop is alive'. Prefer WatchdogPacer.maybe_ping per frame."""
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        """STATUS=...: a one-line state shown by `systemctl status` (secrets scrubbed)."""
        return self.notify(f"STATUS={_one_line(text)}")

    def reloading(self) -> bool:
        """RELOADING=1 (with MONOTONIC_USEC): SIGHUP handling started; call ready() after."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        """STOPPING=1: a clean shutdown began (encoders flushing)."""
        return self.notify("STOPPING=1")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


class WatchdogPacer:
    """Sends WATCHDOG=1 at most every interval (half of WATCHDOG_USEC) from the media loop.

    The media loop calls maybe_ping(now) once per frame: a stalled loop stops pinging and
    systemd restarts the unit. `now` is time.monotonic() seconds.
    """

    def __init__(self, notifier: SdNotifier, interval_s: float | None = None) -> None:
        self._notifier = notifier
        self.interval_s = notifier.watchdog_interval_s if interval_s is None else interval_s
        self._last: float | None = None

    def due(self, now: float) -> bool:
        if self.interval_s is None:
            return False
        return self._last is None or now - self._last >= self.interval_s

    def maybe_ping(self, now: float) -> bool:
        """Ping when due; True when a WATCHDOG=1 was sent."""
        if not self.due(now):
            return False
        self._last = now
        return self._notifier.watchdog()


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half of WATCHDOG_USEC in seconds, or None when no watchdog is meant for this process."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None  # the variable was inherited from a parent it was meant for
    try:
        value = int(usec)
    except ValueError:
        log.warning("WATCHDOG_USEC %r is not an integer; watchdog pings are off", usec)
        return None
    return value / 2e6 if value > 0 else None


def _one_line(text: str) -> str:
    return " ".join(redact_text(str(text)).split())[:200]
