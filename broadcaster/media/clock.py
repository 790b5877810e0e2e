"""The media clock. Audio is the master: frame n spans samples [n*sr//fps, (n+1)*sr//fps),
so audio and video pts never drift apart however long the broadcast runs (integer maths, no
accumulated float error). Wall-clock pacing uses time.monotonic() only."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class FrameClock:
    fps: int
    sample_rate: int = 48000

    def first_sample(self, n: int) -> int:
        return n * self.sample_rate // self.fps

    def samples_in(self, n: int) -> int:
        return self.first_sample(n + 1) - self.first_sample(n)

    def offset(self, n: int) -> float:
        """Seconds from the start of the broadcast to the start of frame n."""
        return n / self.fps


class Pacer:
    """Decides, for each frame slot, when it is due and whether there is time to render it.

    When the loop falls more than `max_lag_s` behind (the process was stopped, the machine
    stalled), the schedule slides forward instead of bursting out the missed slots: pts stay
    contiguous, the stream is simply a little later than before.
    """

    def __init__(self, clock: FrameClock, max_lag_s: float = 0.5, now: float | None = None):
        self.clock = clock
        self.max_lag_s = max_lag_s
        self.start = time.monotonic() if now is None else now
        self.slid_s = 0.0

    def due(self, n: int) -> float:
        return self.start + self.clock.offset(n)

    def plan(self, n: int, now: float) -> tuple[float, bool]:
        """-> (seconds to wait before slot n, whether to render it or repeat the last frame)."""
        lag = now - self.due(n)
        if lag > self.max_lag_s:
            self.start += lag
            self.slid_s += lag
            lag = 0.0
        if lag < 0:
            return -lag, True
        return 0.0, lag < 1.0 / self.clock.fps
