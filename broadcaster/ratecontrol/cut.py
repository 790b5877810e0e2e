"""Cut sizing: how far to cut on overuse, and when a cut is due.

A cut goes in one step to what the link carries less what drains the standing queue within
`drain_time_s` (faster past `emergency_delay_ms`), instead of a ladder of small cuts. At a
link step the delay's growth rate tells the new capacity before any meter does, and a queue
that keeps growing until the encoder shows the cut (`encoder_lag_s`) is drained too. Pure:
measurements (link kbps) and `now` in, the new target out.
"""

from __future__ import annotations

from dataclasses import dataclass

from broadcaster.ratecontrol.overuse import QueueReading
from broadcaster.ratecontrol.tuning import RateControlConfig

FRESH_S = 0.5              # a capacity measured this recently sizes the cut
MAX_DRAIN_SHARE = 0.5      # a cut drains at most this share of the rate per second of queue
RATE_FLOOR_SHARE = 0.5     # never under this share of the drain (noisy delays must not zero it)


@dataclass(frozen=True)
class CutSize:
    """A cut: the new target and what the link was taken to carry (link kbps)."""

    target: float
    reference: float


def cut_due(config: RateControlConfig, now: float, last_cut: float, queue: QueueReading,
            dropped_packets: int) -> bool:
    """The encoder has had cut_holdoff_s to show the last cut (twice that unless the queue
    still grows or the sender drops)."""
    since = now - last_cut
    return since >= config.cut_holdoff_s and (queue.growing or dropped_packets > 0
                                               or since >= 2 * config.cut_holdoff_s)


def size_cut(config: RateControlConfig, *, target: float, expected: float, queue: QueueReading,
             drain: float, recent: float | None, fresh_capacity: float | None,
             lossy: bool) -> CutSize:
    """The target after a cut, from the link target, what the last decision should produce
    (expected), the queue, the drain and the last moments' drain (recent), the capacity if
    measured within FRESH_S, and whether the link lost or dropped packets."""
    c = config
    growing, d = queue.growing, queue.delay_ms
    fresh = fresh_capacity is not None
    ref = fresh_capacity if fresh else (drain if drain > 0 else target)
    # The link's rate of the last moments, not of the meter's lagging window (never under
    # half of it: ACKs come in bunches), while the queue grows.
    recent = (max(recent, 0.5 * drain) if growing and not lossy and recent
              and recent > 0 else None)
    slope = queue.slope_ms_per_s if growing else 0.0
    if growing:
        # Fluid queue: delay grows at (sent - capacity) / capacity seconds per second, so
        # the growth itself tells the capacity before any meter does.
        if slope > 0:
            ref = min(ref, expected / (1.0 + slope / 1000.0))
        if recent is not None:
            ref = min(ref, recent)
    # Drain the queue above low_delay_ms within drain_time_s (a big one faster).
    drain_time = c.drain_time_s if d < c.emergency_delay_ms else c.fast_drain_time_s
    # A growing queue keeps growing until the encoder shows the cut: drain that too. (at the
    # rate we send over what the link now carries: the delay's own slope is measured at the
    # meter's lagging drain and understates it at a step)
    if growing:
        excess = max(slope / 1000.0, expected / ref - 1.0 if ref > 0 else 0.0)
        ahead = d + excess * 1000.0 * c.encoder_lag_s
    else:
        ahead = d
    frac = min(MAX_DRAIN_SHARE, max(0.0, ahead - c.low_delay_ms) / 1000.0 / drain_time)
    floor = RATE_FLOOR_SHARE * (fresh_capacity if fresh else drain)
    if recent is not None:
        floor = min(floor, RATE_FLOOR_SHARE * recent)
    new = min(target * c.min_cut, max(floor, ref * (1.0 - frac)))
    if lossy and not fresh and not growing:
        # Under losses the acknowledged rate reads near zero (a cumulative ACK waits for the
        # retransmission) and the backlog stands while the last cut drains it: nothing new
        # about the link. One small step, not a cut to the "drain", which reads near zero
        # and would drop the video for seconds; frame skipping already relieves the link,
        # and a queue that grows again is cut as usual.
        new = target * c.min_cut
    return CutSize(target=new, reference=ref)
