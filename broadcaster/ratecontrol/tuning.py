"""RateControlConfig: the rate controller's limits and tuning, shared by its parts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RateControlConfig:
    """Limits and tuning. Bitrates are video kbps unless named link_*."""

    floor_kbps: float
    ceiling_kbps: float
    start_kbps: float | None = None      # default: the ceiling
    audio_kbps: float = 128.0            # always carried, counted in the link budget
    overhead: float = 0.06               # container + transport bytes over (video + audio),
                                         # until LinkSample.wire_factor measures it
    max_fps_divisor: int = 4
    floor_tolerance: float = 0.85        # frame-rate cuts start below this share of the floor
    low_delay_ms: float = 40.0           # increase only with less queue than this
    high_delay_ms: float = 120.0         # overuse: cut
    emergency_delay_ms: float = 300.0    # still growing past this: reduce the frame rate
    probe_fail_delay_ms: float = 70.0    # a queue standing this long ends a probe
    drain_time_s: float = 1.5            # cut deep enough to drain a standing queue in this time
    fast_drain_time_s: float = 0.8       # ... and one past emergency_delay_ms in this time
    cut_holdoff_s: float = 0.3           # the encoder needs this long to show a cut
    encoder_lag_s: float = 0.3           # ... during which a growing queue keeps growing
    min_cut: float = 0.95                # every cut takes at least 5 %
    standing_window_s: float = 0.3       # a queue that lasts this long is not a burst
    growth_window_s: float = 0.25        # "growing" = rising steadily this long
    capacity_gain: float = 0.3           # smoothing of capacity measurements
    increase_holdoff_s: float = 1.0      # no increase this soon after an overuse
    recover_tau_s: float = 0.5           # time constant of the return to known capacity
    probe_wait_s: float = 1.5            # hold at capacity this long before probing
    probe_wait_max_s: float = 5.0        # (doubles after each failed probe up to this)
    probe_gain: float = 1.06             # a probe pads the stream to this x the capacity ...
    probe_gain_max: float = 1.5          # ... and each probe the link carried tries more
    probe_chain: float = 1.25            # (the gain of the next probe, x this each time)
    probe_dwell_s: float = 0.8           # how long the link must carry a probe to pass
    probe_settle_s: float = 1.5          # a failed probe's queue drains by itself: no cut ...
    narrowed_share: float = 0.8          # ... unless the link carries less than this share
    probe_reach: float = 0.9             # a probe that sent less than this of its level
                                         # proves only what it sent: no bigger probe follows
    fast_rate: float = 0.50              # ramp (per second) with no capacity known
    capacity_stale_s: float = 2.5        # probe only when no queue measured capacity this long
    utilisation_gate: float = 0.7        # increase only if the link carried this share of target
    capacity_margin: float = 0.92        # hold at this share of the measured capacity
    min_capacity_margin: float = 0.84    # lowest share after repeated cuts
    margin_recover_s: float = 20.0       # quiet time that gives back 1 % of margin

    def __post_init__(self) -> None:
        if not (0 < self.floor_kbps <= self.ceiling_kbps):
            raise ValueError(f"rate control: need 0 < floor_kbps ({self.floor_kbps}) <= "
                             f"ceiling_kbps ({self.ceiling_kbps})")
        if self.start_kbps is not None and not (self.floor_kbps <= self.start_kbps <= self.ceiling_kbps):
            raise ValueError(f"rate control: start_kbps ({self.start_kbps}) must lie between "
                             f"floor_kbps and ceiling_kbps")
        if self.audio_kbps < 0 or not (0 <= self.overhead < 1):
            raise ValueError("rate control: audio_kbps must be >= 0 and overhead in [0, 1)")
        if self.max_fps_divisor < 1:
            raise ValueError("rate control: max_fps_divisor must be >= 1")
        if not (0 < self.low_delay_ms < self.high_delay_ms < self.emergency_delay_ms):
            raise ValueError("rate control: need 0 < low_delay_ms < high_delay_ms < emergency_delay_ms")

    def link_kbps(self, video_kbps: float, overhead: float | None = None) -> float:
        """Link kbps of video_kbps plus the audio (at `overhead`, or the measured one)."""
        return (video_kbps + self.audio_kbps) * (1 + (self.overhead if overhead is None else overhead))

    def video_kbps_for(self, link_kbps: float, overhead: float | None = None) -> float:
        return link_kbps / (1 + (self.overhead if overhead is None else overhead)) - self.audio_kbps
