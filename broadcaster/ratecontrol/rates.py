"""Windowed rates: cumulative counters (bytes acknowledged, written, on the wire) read over a
sliding window of time, and the rate over its most recent part."""

from __future__ import annotations

from collections import deque

RECENT_S = 0.2


class WindowedCounters:
    """Readings of one or more cumulative counters, kept over the last span_s.

    add() returns the oldest reading kept: the window's start, so (latest - oldest) / time is
    the rate over the window. At least two readings are kept, so a slow tick still has one.
    """

    def __init__(self, span_s: float) -> None:
        self.span_s = span_s
        self._hist: deque[tuple] = deque()      # (time, counters...), oldest first

    def add(self, now: float, *counters: int) -> tuple:
        """Record a reading; return the oldest one kept ((time, counters...))."""
        self._hist.append((now, *counters))
        while len(self._hist) > 2 and now - self._hist[1][0] >= self.span_s:
            self._hist.popleft()
        return self._hist[0]

    @property
    def latest(self) -> tuple:
        return self._hist[-1]

    def clear(self) -> None:
        self._hist.clear()

    def recent_kbps(self, now: float, span_s: float = RECENT_S) -> float | None:
        """kbit/s of the first counter (bytes) over the last span_s.

        A meter's window (0.5 s) smooths ACK bunching but lags a link that just narrowed by
        that much: at a 3 -> 1 Mbit/s step it still reads ~2 Mbit/s when the queue is already
        growing. The last 0.2 s tells the new rate; the controller uses it only to size a cut
        on a growing queue.
        """
        if not self._hist:
            return None
        t1, b1 = self._hist[-1][:2]
        for t0, b0, *_ in reversed(self._hist):
            if now - t0 >= span_s:
                return max(0, b1 - b0) * 8 / (t1 - t0) / 1000.0 if t1 > t0 else None
        return None
