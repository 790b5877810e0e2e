"""The capacity estimate: the link rate measured while a queue stood, kept until a measurement
replaces it.

While a queue stands the sender never runs dry, so the rate the link drains it at (the meter's
busy_rate_kbps) IS the capacity. Keyframe bursts make such moments every GOP, so the capacity
stays known without probing; probes the link carried raise it, a probe that filled the link or
a cut that had no fresh figure lowers it. Nothing lowers it with time: a silent, still scene
sends too little to make a queue, and an idle link has not narrowed for that. Pure: every
method takes its measurements (link kbps) and `now`.
"""

from __future__ import annotations

import math

from broadcaster.ratecontrol.tuning import RateControlConfig

SLOW_START_SHARE = 0.5     # a busy rate under this share of the drain is no measurement
NEW_LINK_SHARE = 0.75      # a busy rate under this share of the capacity: a different link
REPLACE_AFTER_S = 1.0      # a lower reading this long after the last replaces the figure
NARROWING_GAIN = 0.7       # smoothing of a lower reading within that second (a higher one
                           # uses config.capacity_gain)
PROBE_FILL_FLOOR = 0.8     # a full probe with no busy run lowers the figure at most this far


class CapacityEstimate:
    """The link's capacity (link kbps), or None before any queue measured it."""

    def __init__(self, config: RateControlConfig) -> None:
        self.config = config
        self.kbps: float | None = None
        self.measured_at = -math.inf

    def age(self, now: float) -> float:
        """Seconds since a queue or a probe last measured the link."""
        return now - self.measured_at

    def carries(self, link_kbps: float) -> bool:
        """The capacity known carries link_kbps."""
        return self.kbps is not None and link_kbps <= self.kbps

    @staticmethod
    def busy_reading(busy_kbps: float | None, drain_kbps: float) -> float | None:
        """The meter's busy rate, unless the link just carried twice that: a busy run that
        began in TCP slow start (a new connection) or before a burst of ACKs says nothing
        about the capacity. (Only the meter can tell a clean busy interval from one with
        losses, so none is guessed here.)"""
        if busy_kbps is not None and busy_kbps < SLOW_START_SHARE * drain_kbps:
            return None
        return busy_kbps

    def observe_busy(self, now: float, busy_kbps: float | None) -> bool:
        """Take a busy-rate reading (from busy_reading); True when it says the link is a
        different one (far below the figure known)."""
        if busy_kbps is None or busy_kbps <= 0:
            return False
        new_link = self.kbps is not None and busy_kbps < NEW_LINK_SHARE * self.kbps
        if self.kbps is None or (busy_kbps < self.kbps and now - self.measured_at > REPLACE_AFTER_S):
            self.kbps = busy_kbps
        else:   # a narrowing link must be believed at once, a widening one confirmed
            # (a busy interval can read high: SRT's ACKs come in bursts; a widened link
            # is found by probes, which set the capacity they proved)
            gain = self.config.capacity_gain if busy_kbps > self.kbps else \
                max(self.config.capacity_gain, NARROWING_GAIN)
            self.kbps += gain * (busy_kbps - self.kbps)
        self.measured_at = now
        return new_link

    def probe_filled(self, busy_kbps: float | None, drain_kbps: float) -> None:
        """A probe filled the link: its busy rate is the capacity. With no busy run yet the
        link drains what it can; a token bucket lets a short probe through above its rate,
        so a figure a passed probe set can be above the link, though not under this."""
        if busy_kbps is not None and busy_kbps > 0:
            self.kbps = busy_kbps
        elif self.kbps is not None and drain_kbps > 0:
            self.kbps = min(self.kbps, max(drain_kbps, PROBE_FILL_FLOOR * self.kbps))

    def probe_carried(self, now: float, sent_kbps: float) -> None:
        """A probe the link carried without a queue: it carries at least what was sent."""
        if sent_kbps > (self.kbps or 0.0):
            self.kbps = sent_kbps
            self.measured_at = now

    def cut_to(self, reference_kbps: float, target_kbps: float) -> None:
        """A cut with no fresh figure: what it cut to is the best there is, so recovery
        does not climb back to a link that is gone (at most halved per cut)."""
        if self.kbps is not None:
            self.kbps = min(self.kbps, max(reference_kbps, target_kbps, 0.5 * self.kbps))
