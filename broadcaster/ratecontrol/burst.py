"""Tell a keyframe burst from a narrowing link in the sender's queue.

A keyframe is written in one go and needs (size / spare capacity) to drain: the queue
jumps, then falls. A narrower link makes the queue climb tick after tick. Meters record
how many bytes the application wrote each tick; what one tick wrote beyond `burst_factor`
times the median tick of the last `median_window_s` is a burst, and its not-yet-drained
part (drained at the spare capacity: the drain less the mean write rate over
`avg_window_s`) is subtracted from the queueing delay the controller sees.

The median, not the mean: a rising rate (the controller's ramp or recovery, or a probe's
padding switched on) writes more each tick than a lagging mean, and counting that as bursts
would hide real overuse; no rise makes one tick twice the median (a probe pads to at most
1.8x what is sent), a keyframe does. The median is of the last `median_window_s` only, so a
bitrate that recovers quickly after a deep cut (x3 in a second) is not taken for a run of
keyframes either.

A burst explains the queue for `max_age_s` at most. The encoder's VBV (buffer_s of the
bitrate, which follows the bitrate) makes the frames after a keyframe smaller, so its bytes
are gone within about that; on a saturated link (no spare capacity) the excess would
otherwise seem to linger for many seconds and hide a queue that is really there.
"""

from __future__ import annotations

from collections import deque
from statistics import median

STANDING_MS = 40.0


class BurstCompensator:
    """Tracks write bursts and the part of the queue they still explain."""

    def __init__(self, avg_window_s: float = 2.0, burst_factor: float = 2.0,
                 median_window_s: float = 0.6, max_age_s: float = 1.0) -> None:
        self._avg_window = avg_window_s
        self._median_window = median_window_s
        self._max_age = max_age_s
        self._factor = burst_factor
        self._writes: deque[tuple[float, int]] = deque()      # (now, bytes written)
        self._bursts: deque[list[float]] = deque()            # [start, excess bytes]
        self._rates: deque[tuple[float, float]] = deque()     # (now, bytes/s of that tick)
        self._raised_since: float | None = None               # raw queue above STANDING_MS

    def typical_bps(self) -> float:
        """Median write rate of the ticks in the window (0 until a few are known)."""
        if len(self._rates) < 4:
            return 0.0
        return median(r for _, r in self._rates)

    def written(self, now: float, nbytes: int) -> None:
        """Bytes the application wrote since the previous call."""
        rate = self.typical_bps()
        prev_t = self._writes[-1][0] if self._writes else None
        self._writes.append((now, nbytes))
        if prev_t is not None and now > prev_t:
            self._rates.append((now, nbytes / (now - prev_t)))
        while len(self._writes) > 2 and now - self._writes[0][0] > self._avg_window:
            self._writes.popleft()
        while len(self._rates) > 2 and now - self._rates[0][0] > self._median_window:
            self._rates.popleft()
        if prev_t is None or rate <= 0:
            return
        excess = nbytes - self._factor * rate * (now - prev_t)
        if excess > 0:
            self._bursts.append([now, float(excess)])

    def average_bps(self, now: float) -> float:
        """Mean write rate over the window, bytes per second (0 until known)."""
        if len(self._writes) < 2:
            return 0.0
        span = now - self._writes[0][0]
        if span <= 0:
            return 0.0
        return sum(n for _, n in list(self._writes)[1:]) / span

    def residual_ms(self, now: float, drain_bps: float, raw_ms: float | None = None) -> float:
        """Queueing delay (ms at drain_bps) still explained by recent bursts.

        raw_ms is the queue the meter sees before any discount. A keyframe's queue falls
        back under STANDING_MS within max_age_s; one that has stood above it longer is the
        link's, whatever bursts came meanwhile (with a keyframe every second on a saturated
        link the discounts would overlap and hide a standing queue for as long as it lasts).
        """
        if raw_ms is not None:
            if raw_ms <= STANDING_MS:
                self._raised_since = None
            elif self._raised_since is None:
                self._raised_since = now
            if self._raised_since is not None and now - self._raised_since > self._max_age:
                return 0.0
        if drain_bps <= 0:
            return 0.0
        spare = max(drain_bps - self.average_bps(now), 0.1 * drain_bps)
        while self._bursts and (now - self._bursts[0][0] > self._max_age
                                or self._bursts[0][1] - spare * (now - self._bursts[0][0]) <= 0):
            self._bursts.popleft()
        total = 0.0
        for start, excess in self._bursts:    # (in time order: the older ones are gone)
            total += max(0.0, excess - spare * (now - start))
        return total / drain_bps * 1000.0
