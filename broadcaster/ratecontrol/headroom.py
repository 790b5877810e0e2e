"""Headroom: the share of the measured capacity the bitrate holds at (the margin).

A cut while sitting at the plateau means the encoder is burstier than the headroom allows, so
it keeps more (down to min_capacity_margin); quiet time gives it back 1 % per
margin_recover_s, and a different link starts afresh.
"""

from __future__ import annotations

import math

from broadcaster.ratecontrol.tuning import RateControlConfig

SHRINK_STEP = 0.02
RECOVER_STEP = 0.01
AT_PLATEAU = 0.97      # a target this close to margin x capacity is holding at the plateau


class Headroom:
    """The margin in use; see the module docstring."""

    def __init__(self, config: RateControlConfig) -> None:
        self.config = config
        self.margin = config.capacity_margin
        self._recovered_at = -math.inf

    def level(self, capacity_kbps: float) -> float:
        """The link rate to hold at on a link of this capacity."""
        return self.margin * capacity_kbps

    def reset(self) -> None:
        """A different link: the configured margin again."""
        self.margin = self.config.capacity_margin

    def cut_at(self, target_kbps: float, capacity_kbps: float | None) -> None:
        """A cut: keep more headroom if it came while holding at the plateau."""
        if capacity_kbps is not None and target_kbps >= AT_PLATEAU * self.margin * capacity_kbps:
            self.margin = max(self.config.min_capacity_margin, self.margin - SHRINK_STEP)

    def recover(self, now: float, last_cut: float) -> None:
        """Quiet time since the last cut gives back a little margin."""
        c = self.config
        if now - last_cut > c.margin_recover_s and now - self._recovered_at > c.margin_recover_s:
            self.margin = min(c.capacity_margin, self.margin + RECOVER_STEP)
            self._recovered_at = now
