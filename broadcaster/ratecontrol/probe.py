"""The probe state machine: tests the link above the known capacity with padding.

Only when no queue has measured the capacity for `capacity_stale_s` does the controller
probe, and it probes with padding, not with the picture (as WebRTC does): H.264 filler data
brings what is sent to `probe_gain` x the capacity for `probe_dwell_s` while the encoder's
bitrate stays where it is. A queue, or a saturated drain below the probe, fails it at once
(only the padding stops) and the next probe waits twice as long. A probe the link carried
raises the known capacity, and a bigger probe (x`probe_chain` each time, up to
`probe_gain_max`) follows at once if the probe really sent its level, so a widened link is
found within a few probes while a stable one never sees its bitrate swing. With audio only
there is no picture to carry padding, so there the picture itself, at least the smallest
one, is the probe.

    IDLE --(at the capacity's level)--> PLATEAU --(wait, capacity stale)--> PROBING
    PROBING --(carried for probe_dwell_s)--> PLATEAU, or PROBING again (a bigger probe)
    PROBING --(a queue, a saturated drain)--> PLATEAU (the next probe waits longer)
    any --(a cut, a recovery below the capacity)--> IDLE

Pure: every method takes its measurements (link kbps) and `now`.
"""

from __future__ import annotations

import math
from enum import Enum

from broadcaster.ratecontrol.overuse import QueueReading
from broadcaster.ratecontrol.tuning import RateControlConfig

PROBE_MAX_JUMP = 1.8       # a probe stays under this x what is sent: the meters take a jump
                           # of the writes to twice their median for a keyframe burst
TAUGHT = 1.03              # a probe that sent this x the capacity known raised it
SATURATED = 0.95           # a busy rate under this share of the probe's level: the link is full
CEILING_REACH = 0.99       # a probe this close to the ceiling's level chains no bigger one
NEAR_CEILING = 0.98        # a target this close to the ceiling has nothing to probe for
FIRST_GAIN = 1.1           # the gain before any probe ended (config.probe_gain after)


class ProbePhase(Enum):
    """Where the controller stands towards probing the link."""

    IDLE = "idle"             # below the known capacity (recovering), or none known
    PLATEAU = "plateau"       # holding at the known capacity: a probe may follow
    PROBING = "probing"       # padding tests the link above it


class ProbeVerdict(Enum):
    """What one tick says about a running probe."""

    PENDING = "pending"       # carried so far, not yet for probe_dwell_s
    CARRIED = "carried"       # carried for probe_dwell_s: room up to its level
    REFUSED = "refused"       # a queue or a saturated drain: no room


class ProbeNext(Enum):
    """What follows a probe the link carried."""

    HOLD = "hold"             # back to the plateau
    BIGGER = "bigger"         # a bigger probe at once (it reached its level: the link widened)
    AGAIN = "again"           # the same gain again at once, from the capacity it raised


class Probe:
    """The probe's state: phase, level, gain and waits; see the module docstring."""

    def __init__(self, config: RateControlConfig) -> None:
        self.config = config
        self.phase = ProbePhase.IDLE
        self.since = -math.inf                 # when the phase began
        self.level = 0.0                       # link kbps a probe tests (target + padding)
        self.gain = FIRST_GAIN
        self.yield_ = 1.0                      # what the encoder really sends / its target
        self.base: float | None = None         # audio only: the target before the probe raised it
        self.wait = config.probe_wait_s        # hold at the plateau this long before probing
        self.failed_at = -math.inf
        self.failed_capacity = 0.0             # what the link carried when the last probe failed

    @property
    def probing(self) -> bool:
        return self.phase is ProbePhase.PROBING

    def enter(self, phase: ProbePhase, now: float) -> None:
        self.phase, self.since = phase, now

    def due(self, now: float, wait_s: float) -> bool:
        """The plateau has lasted wait_s."""
        return now - self.since >= wait_s

    def start(self, now: float, *, capacity: float | None, target: float, expected: float,
              offered: float | None, limit: float, smallest_picture: float | None) -> float:
        """Begin a probe; return the target to use (raised only when the picture is the probe).

        expected: link kbps the last decision should produce; offered: what the sender wrote
        lately (link kbps); limit: the highest level worth testing (the ceiling's plateau);
        smallest_picture: the link kbps of the smallest picture when the target is below it
        (audio only), else None.
        """
        self.enter(ProbePhase.PROBING, now)
        # Encoders fall short of their target (x264 ABR by ~5 %): pad from what is really sent.
        sending = expected if offered is None else min(expected, offered)
        self.yield_ = sending / expected if expected > 0 else 1.0
        self.level = min(max(capacity or 0.0, target) * self.gain,
                         max(sending, 1.0) * PROBE_MAX_JUMP, limit)
        self.base = None
        if smallest_picture is None:
            return target
        # Audio only: no picture to pad, so the picture is the probe, at least the smallest
        # one (however little the silence and the missing picture send now).
        self.base = target
        self.level = min(max(self.level, smallest_picture), limit)
        return self.level

    def verdict(self, now: float, queue: QueueReading, busy_kbps: float | None) -> ProbeVerdict:
        """Any standing queue, or a busy rate (the link saturated) below the probe, means no
        more room; a dwell without either means room.

        (the raw busy rate: the smoothed capacity lags a widening link; a queue of one
        frame's worth comes and goes near a full link: not a verdict; and one tick over
        high_delay_ms is: a queue that zigzags on a full link never "stands", so waiting
        for it to stand would leave the probe filling the link)
        """
        c = self.config
        d = queue.delay_ms
        full = (queue.overuse or queue.standing_ms > c.probe_fail_delay_ms or d > c.high_delay_ms
                or (queue.growing and d > c.probe_fail_delay_ms)
                or (busy_kbps is not None and 0 < busy_kbps < SATURATED * self.level))
        if full:
            return ProbeVerdict.REFUSED
        if now - self.since >= c.probe_dwell_s:
            return ProbeVerdict.CARRIED
        return ProbeVerdict.PENDING

    def refused(self, now: float, carried_kbps: float) -> float | None:
        """End a probe the link refused; return the target it raised from (audio only), if any."""
        self.failed_at = now
        self.failed_capacity = carried_kbps
        self.enter(ProbePhase.PLATEAU, now)
        self.wait = min(self.config.probe_wait_max_s, self.wait * 2.0)
        self.gain = self.config.probe_gain
        return self.base

    def carried(self, now: float, *, sent: float, known: float, room: bool,
                limit: float) -> ProbeNext:
        """End a probe the link carried, having sent `sent` (link kbps) with `known` the
        capacity before it; room: the target is below the ceiling; limit: as for start()."""
        c = self.config
        self.enter(ProbePhase.PLATEAU, now)
        taught = sent > TAUGHT * known           # the probe raised the capacity figure
        if taught:
            # (only a probe that taught something resets the wait: on a steady link the
            # first probe passes just under the capacity and the bigger one after it fails,
            # so resetting the wait there would pad the link every probe_wait_s for nothing)
            self.wait = c.probe_wait_s
        if room:
            if sent >= c.probe_reach * self.level and self.level < CEILING_REACH * limit:
                self.gain = min(c.probe_gain_max, self.gain * c.probe_chain)
                return ProbeNext.BIGGER
            # (a probe the encoder and padding fell short of proves only what was sent: on a
            # link just above that, a bigger probe would only fail and leave a queue; but if
            # it raised the capacity known, the link may well have widened, so the same
            # probe goes on from the new figure)
            if taught:
                return ProbeNext.AGAIN
            if sent < known:
                # It never even sent the capacity known: it tested nothing. The next one
                # (after the usual wait) asks for more, or a figure that a stall left too
                # low would never be probed past (an encoder that undershoots its target
                # keeps each probe's padding small).
                self.gain = min(c.probe_gain_max, self.gain * c.probe_chain)
                return ProbeNext.HOLD
        self.gain = c.probe_gain
        return ProbeNext.HOLD

    def cut(self, now: float) -> None:
        """A cut: the next probe starts from the first gain, after the plateau's wait."""
        self.enter(ProbePhase.IDLE, now)
        self.gain = self.config.probe_gain

    def settling(self, now: float, drain_kbps: float) -> bool:
        """A failed probe's queue is still draining by itself, on a link that carries what it
        did when the probe failed (not one that narrowed under it)."""
        c = self.config
        return now - self.failed_at < c.probe_settle_s and \
            drain_kbps >= c.narrowed_share * self.failed_capacity

    def padding(self, sending_kbps: float) -> float:
        """Filler (link kbps) that brings what is sent to the probe's level."""
        if not self.probing:
            return 0.0
        return max(0.0, self.level - sending_kbps * self.yield_)
