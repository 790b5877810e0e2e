"""What /healthz answers: live, on air, degraded (with reasons). Thread-safe.

One Health object is updated from any thread through ServiceRuntime: each media tick beats,
the publisher's connect/disconnect sets on air and degrades/clears the "ingest" reason. Any
part may add a reason key of its own. Reason texts pass through redact_text, since they
often quote an error that names a URL.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from broadcaster.redact import redact_text

_REASON_KEY = re.compile(r"^[a-z][a-z0-9_.-]{0,47}$")


class Health:
    """Live / on-air / degraded state, updated by the core and read by /healthz."""

    def __init__(self, stall_after_s: float = 10.0, now: float | None = None) -> None:
        self._lock = threading.Lock()
        self._started = time.monotonic() if now is None else now
        self._on_air = False
        self._on_air_since: float | None = None
        self._last_beat: float | None = None
        self._reasons: dict[str, str] = {}
        self.stall_after_s = stall_after_s

    def set_on_air(self, on_air: bool, now: float | None = None) -> None:
        """True once packets reach the ingest; False while it is disconnected/reconnecting."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if on_air and not self._on_air:
                self._on_air_since = now
            elif not on_air:
                self._on_air_since = None
            self._on_air = bool(on_air)

    def beat(self, now: float | None = None) -> None:
        """Called by the media loop (per frame is fine): 'the pipeline still turns'."""
        with self._lock:
            self._last_beat = time.monotonic() if now is None else now

    def degrade(self, reason_key: str, text: str) -> None:
        """Mark a degradation (e.g. degrade("ingest", "connect failed: ...")) until clear()."""
        if not _REASON_KEY.match(reason_key):
            raise ValueError(f"health reason key {reason_key!r} must match {_REASON_KEY.pattern}")
        with self._lock:
            self._reasons[reason_key] = redact_text(str(text))[:300]

    def clear(self, reason_key: str) -> None:
        """Remove a degradation once it is resolved; unknown keys are ignored."""
        with self._lock:
            self._reasons.pop(reason_key, None)

    @property
    def on_air(self) -> bool:
        with self._lock:
            return self._on_air

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """The /healthz body. live is False when the media loop stopped beating."""
        now = time.monotonic() if now is None else now
        with self._lock:
            stalled = (self._last_beat is not None
                       and now - self._last_beat > self.stall_after_s)
            return {
                "live": not stalled,
                "on_air": self._on_air,
                "on_air_for_s": (round(now - self._on_air_since, 1)
                                 if self._on_air_since is not None else None),
                "degraded": bool(self._reasons),
                "reasons": dict(sorted(self._reasons.items())),
                "uptime_s": round(now - self._started, 1),
                "media_loop_last_beat_s": (round(now - self._last_beat, 2)
                                           if self._last_beat is not None else None),
            }

    def http_status(self, snapshot: dict[str, Any]) -> int:
        """200 when live and on air, 503 otherwise (so a load balancer/monitor alerts)."""
        return 200 if snapshot["on_air"] and snapshot["live"] else 503
