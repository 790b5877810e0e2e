"""Reconnect delays as a pure policy: by default about 2 s, then x1.5 with jitter, capped
(as OBS does).

Every reconnecting part (ingest, chat sources, microphone, remote ASR) takes its delays from
a Backoff, each with its own initial delay, factor and cap.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial_s: float = 2.0
    factor: float = 1.5
    max_s: float = 60.0
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random, repr=False)
    attempt: int = 0

    def __post_init__(self) -> None:
        finite = all(math.isfinite(v) for v in (self.initial_s, self.factor, self.max_s, self.jitter))
        if not finite or self.initial_s <= 0 or self.factor < 1 or self.max_s < self.initial_s \
                or not 0 <= self.jitter < 1:
            raise ValueError(f"bad backoff settings initial_s={self.initial_s} factor={self.factor} "
                             f"max_s={self.max_s} jitter={self.jitter}")

    def nominal(self, attempt: int) -> float:
        """The delay before attempt `attempt` (0-based), without jitter."""
        return min(self.initial_s * self.factor ** max(0, attempt), self.max_s)

    def delay(self, attempt: int) -> float:
        """The delay before attempt `attempt` (0-based), with jitter."""
        base = self.nominal(attempt)
        spread = base * self.jitter
        return max(0.0, min(self.max_s, base + self.rng.uniform(-spread, spread)))

    def next_delay(self) -> float:
        """The delay to wait before the next attempt (with jitter); advances the sequence."""
        delay = self.delay(self.attempt)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """After a connection proved healthy: the next failure waits initial_s again."""
        self.attempt = 0
