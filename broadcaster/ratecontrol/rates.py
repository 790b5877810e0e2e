"""Sliding windows of cumulative byte counts, and the rate over their most recent part."""

from __future__ import annotations

from collections import deque

RECENT_S = 0.2


def slide_window(hist: deque, now: float, span_s: float) -> tuple:
    """Drop readings from the front of hist ((time, counters...), oldest first) while the
    next one is at least span_s old, keeping two at the least; return the oldest kept."""
    while len(hist) > 2 and now - hist[1][0] >= span_s:
        hist.popleft()
    return hist[0]


def recent_rate_kbps(hist, now: float, span_s: float = RECENT_S) -> float | None:
    """kbit/s over the last span_s of hist ((time, cumulative bytes), oldest first).

    A meter's window (0.5 s) smooths ACK bunching but lags a link that just narrowed by
    that much: at a 3 -> 1 Mbit/s step it still reads ~2 Mbit/s when the queue is already
    growing. The last 0.2 s tells the new rate; the controller uses it only to size a cut
    on a growing queue.
    """
    if not hist:
        return None
    t1, b1 = hist[-1]
    for t0, b0 in reversed(hist):
        if now - t0 >= span_s:
            return max(0, b1 - b0) * 8 / (t1 - t0) / 1000.0 if t1 > t0 else None
    return None
