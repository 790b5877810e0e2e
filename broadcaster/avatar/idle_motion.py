"""Life between lines: blinks at natural random intervals, breathing, slow head sway.

Everything is a pure function of time (frame_index / fps) and a seed, so a frame can be
rendered again identically and reset() never disturbs the rhythm.
"""
from __future__ import annotations

import bisect
import math
import random
from collections import OrderedDict


class BlinkSchedule:
    """Blink start times: gaps of 2-6 s (gamma-shaped, mean about 3.5 s), sometimes a double blink.

    Time is cut into BLOCK_S blocks, each drawn from its own seed, so any time's blinks are
    computed without those before it and only the last few blocks are kept: days on air
    hold a few dozen start times, not one per blink since the start. Where two blocks meet
    the gap is the rest of one plus the first of the next (at most about 12 s, once a block)."""

    BLOCK_S = 60.0
    KEEP_BLOCKS = 4

    def __init__(self, seed: int = 0, blink_s: float = 0.16) -> None:
        self.seed = seed
        self.blink_s = blink_s
        self._blocks: OrderedDict[int, list[float]] = OrderedDict()

    def _starts(self, block: int) -> list[float]:
        starts = self._blocks.get(block)
        if starts is not None:
            self._blocks.move_to_end(block)
            return starts
        rng = random.Random(self.seed * 1_000_003 + block)
        end = (block + 1) * self.BLOCK_S
        t, starts = block * self.BLOCK_S, []
        while True:
            # the first gap counts from the block's start, so blocks never blink closer than a gap
            t += min(6.0, max(1.8, rng.gammavariate(6.0, 0.58)))
            if t >= end:
                break
            starts.append(t)
            if rng.random() < 0.12 and t + 0.35 < end:  # double blink
                t += 0.35
                starts.append(t)
        self._blocks[block] = starts
        while len(self._blocks) > self.KEEP_BLOCKS:
            self._blocks.popitem(last=False)
        return starts

    def value(self, t: float) -> float:
        """Lid closure in [0, 1] at time t (seconds)."""
        block = math.floor(t / self.BLOCK_S)
        starts = self._starts(block)
        i = bisect.bisect_right(starts, t) - 1
        if i < 0:
            # a blink begun at the end of the block before may still be closing the lids
            earlier = self._starts(block - 1) if block > 0 else []
            if not earlier:
                return 0.0
            start = earlier[-1]
        else:
            start = starts[i]
        phase = (t - start) / self.blink_s
        if phase >= 1.0:
            return 0.0
        return 1.0 - abs(2.0 * phase - 1.0) ** 1.5


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
