"""Reconnect delays: about 2 s, then x1.5 with jitter, capped (as OBS does), as a pure policy."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial_s: float = 2.0
    factor: float = 1.5
    max_s: float = 60.0
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay(self) -> float:
        base = min(self.initial_s * self.factor ** self.attempt, self.max_s)
        self.attempt += 1
        spread = base * self.jitter
        return max(0.0, min(self.max_s, base + self.rng.uniform(-spread, spread)))

    def reset(self) -> None:
        self.attempt = 0
