"""Reconnect delays shared by every chat source: 2 s, then x1.5 with jitter, capped."""

from __future__ import annotations

import random


class Backoff:
    """Delay sequence for reconnect attempts; reset() after a connection proved healthy.

    Jitter is +/- `jitter` of the nominal delay so many restarted sources do not reconnect in
    lockstep. The rng is injectable so tests can check the numbers.
    """

    def __init__(self, first: float = 2.0, factor: float = 1.5, cap: float = 300.0,
                 jitter: float = 0.2, rng: random.Random | None = None) -> None:
        if first <= 0 or factor < 1 or cap < first or not 0 <= jitter < 1:
            raise ValueError(f"bad backoff settings first={first} factor={factor} "
                             f"cap={cap} jitter={jitter}")
        self.first, self.factor, self.cap, self.jitter = first, factor, cap, jitter
        self._rng = rng or random.Random()
        self._nominal = first

    def next_delay(self) -> float:
        """Return the delay to wait before the next attempt and advance the sequence."""
        nominal = self._nominal
        self._nominal = min(self.cap, nominal * self.factor)
        spread = nominal * self.jitter
        return min(self.cap, max(0.0, nominal + self._rng.uniform(-spread, spread)))

    def reset(self) -> None:
        self._nominal = self.first
