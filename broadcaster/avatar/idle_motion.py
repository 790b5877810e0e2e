"""Life between lines: blinks at natural random intervals, breathing, slow head sway.

Everything is a pure function of time (frame_index / fps) and a seed, so a frame can be
rendered again identically and reset() never disturbs the rhythm.
"""
from __future__ import annotations

import bisect
import math
import random


class BlinkSchedule:
    """Blink start times: gaps of 2-6 s (gamma-shaped, mean about 3.5 s), sometimes a double blink."""

    def __init__(self, seed: int = 0, blink_s: float = 0.16) -> None:
        self._rng = random.Random(seed)
        self.blink_s = blink_s
        self._starts: list[float] = []
        self._horizon = 0.0

    def _extend(self, until: float) -> None:
        while self._horizon <= until + 10.0:
            gap = min(6.0, max(1.8, self._rng.gammavariate(6.0, 0.58)))
            self._horizon += gap
            self._starts.append(self._horizon)
            if self._rng.random() < 0.12:  # double blink
                self._horizon += 0.35
                self._starts.append(self._horizon)

    def value(self, t: float) -> float:
        """Lid closure in [0, 1] at time t (seconds)."""
        self._extend(t)
        i = bisect.bisect_right(self._starts, t) - 1
        if i < 0:
            return 0.0
        phase = (t - self._starts[i]) / self.blink_s
        if phase >= 1.0:
            return 0.0
        return 1.0 - abs(2.0 * phase - 1.0) ** 1.5 if phase < 1.0 else 0.0


class HeadMotion:
    """Slow sway (a few incommensurate sines) plus nods that grow while talking."""

    def __init__(self, seed: int = 0) -> None:
        rng = random.Random(seed + 7919)
        self._phases = [rng.uniform(0, 2 * math.pi) for _ in range(6)]

    def value(self, t: float, talking: float) -> tuple[float, float, float, float]:
        """(breath, head_dx, head_dy, head_tilt) in the puppet's [-1, 1] units."""
        p = self._phases
        breath = math.sin(2 * math.pi * t / 4.2 + p[0])
        idle = 0.12
        amp = idle + 0.35 * talking
        dx = amp * (0.7 * math.sin(2 * math.pi * 0.11 * t + p[1]) + 0.3 * math.sin(2 * math.pi * 0.37 * t + p[2]))
        dy = amp * 0.6 * math.sin(2 * math.pi * 0.23 * t + p[3]) + 0.25 * talking * math.sin(2 * math.pi * 1.3 * t + p[4])
        tilt = amp * math.sin(2 * math.pi * 0.07 * t + p[5])
        return breath, dx, dy, tilt
