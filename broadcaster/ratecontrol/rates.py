"""The rate over the most recent part of a meter's window of cumulative byte counts."""

from __future__ import annotations

RECENT_S = 0.2


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
