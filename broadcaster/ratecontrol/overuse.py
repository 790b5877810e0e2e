"""The queue/overuse detector: tells a standing or growing queue (overuse) from a keyframe's
burst, from the queueing delays of the last second.

A queue that jumps and then falls (a keyframe) is not overuse; one that climbs tick after
tick, or stands for `standing_window_s`, or sender drops (data the link never took), are.
Pure: each observe() takes the delay and `now`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import pairwise

from broadcaster.ratecontrol.tuning import RateControlConfig

HISTORY_S = 1.0
SURGE_MS = 20.0          # three rises this big in a row are a link step, however jittery
NET_RISE_MS = 10.0       # "growing" needs at least this net rise over growth_window_s
RISING_SHARE = 0.6       # ... and rising steps in this share of the ticks


@dataclass(frozen=True)
class QueueReading:
    """What the queue did up to one tick."""

    delay_ms: float          # the queueing delay now
    standing_ms: float       # the least delay over standing_window_s: what stood all along
    growing: bool            # rising tick after tick over growth_window_s (not one jump)
    draining: bool           # falling fast enough to be gone within drain_time_s (a burst)
    slope_ms_per_s: float    # the delay's slope over growth_window_s
    overuse: bool            # a standing or growing queue, or sender drops: too much is sent
    room: bool               # the queue that stood is short enough to send more


class QueueDetector:
    """Keeps the last second of queueing delays; see the module docstring."""

    def __init__(self, config: RateControlConfig) -> None:
        self.config = config
        self._delays: deque[tuple[float, float]] = deque(maxlen=256)   # (now, delay ms)

    def observe(self, now: float, delay_ms: float, dropped_packets: int = 0) -> QueueReading:
        c = self.config
        d = max(0.0, delay_ms)
        self._delays.append((now, d))
        while self._delays and now - self._delays[0][0] > HISTORY_S:
            self._delays.popleft()
        standing = min(v for t, v in self._delays if now - t <= c.standing_window_s)
        growing = self._growing(now, d)
        draining = self._draining(now, d)
        overuse = ((standing > c.high_delay_ms and not draining) or (d > c.high_delay_ms and growing)
                   or dropped_packets > 0)
        return QueueReading(delay_ms=d, standing_ms=standing, growing=growing, draining=draining,
                            slope_ms_per_s=self._slope(now, c.growth_window_s), overuse=overuse,
                            room=standing < c.low_delay_ms)

    def _growing(self, now: float, d: float) -> bool:
        """The queue rose over most ticks of the last growth_window_s, not in one jump.

        A keyframe is one jump followed by a fall; an overloaded link rises tick after tick
        (with jitter), so require a net rise and rising steps in most ticks.
        """
        pts = [v for t, v in self._delays if now - t <= self.config.growth_window_s]
        if len(pts) < 3:
            return False
        deltas = [b - a for a, b in pairwise(pts)]
        # A link step: three big rises in a row (a burst seen through ACK timing spans two).
        surge = len(deltas) >= 3 and min(deltas[-3:]) > SURGE_MS
        return d - pts[0] > NET_RISE_MS and (surge or sum(x > 0 for x in deltas) >= RISING_SHARE * len(deltas))

    def _slope(self, now: float, window_s: float) -> float:
        """Queue delay slope over the last window_s, in ms per second."""
        pts = [(t, v) for t, v in self._delays if now - t <= window_s]
        if len(pts) < 2 or pts[-1][0] - pts[0][0] <= 0:
            return 0.0
        return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])

    def _draining(self, now: float, d: float) -> bool:
        """The queue falls fast enough to be gone within drain_time_s (a burst, not overuse)."""
        c = self.config
        slope = self._slope(now, c.standing_window_s)
        return slope < 0 and d + slope * c.drain_time_s < c.low_delay_ms
