"""At most one log line per kind of event per interval, so a storm (thousands of failed
accepts a second) is reported as one line a second with a count, never as a flood."""

from __future__ import annotations


class LogThrottle:
    """A pure policy: allow(key, now) says whether to log now and how many were held back."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, key: str, now: float) -> int | None:
        """None: stay quiet. A number: log now, mentioning that many held back since the last."""
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)
