"""Rate control: pick the encoder bitrate from measurements of the upstream link.

A pure policy: feed update() one LinkSample per tick (with `now`), get a RateDecision back.
Nothing here reads a clock or a socket, so it is tested with plain numbers.

How it improves on OBS's dynamic bitrate (cuts of 2-10 % at 200/400/700 ms of queue, +20 %
every 4 s) and Belabox (unacked packets vs RTT thresholds, constant creep):
- Capacity is measured, not guessed: while a queue stands the sender never runs dry, so
  the rate the link drains it at (the meter's busy_rate_kbps) IS the capacity. Keyframe
  bursts make such moments every GOP, so the capacity stays known without probing.
- A cut goes in one step to that capacity less what drains the standing queue within
  `drain_time_s` (faster past `emergency_delay_ms`), instead of a ladder of small cuts.
  At a link step the delay's growth rate tells the new capacity before any meter does.
- A queue that jumps and then falls (a keyframe) is not overuse; one that climbs tick after
  tick, or stands for `standing_window_s`, or SRT sender drops, are.
- libx264 (ultrafast, in-process) shows a new bitrate only 0.1-0.25 s after it is set,
  so a queue still growing past `emergency_delay_ms` also gets frame skipping
  (fps_divisor), which acts on the next frame, until the queue is back under control.
- Increase is gated (short queue, no recent overuse, the link carried what we sent): back to
  `capacity_margin` x capacity quickly, then hold. Only when no queue has measured the
  capacity for `capacity_stale_s` does it probe, and it probes with padding, not with the
  picture (as WebRTC does): H.264 filler data brings what is sent to `probe_gain` x the
  capacity for `probe_dwell_s` while the encoder's bitrate stays where it is. A queue, or a
  saturated drain below the probe, ends it at once (reason "retreat": only the padding
  stops; the queue it leaves is no cut while the link carries what it did) and the next
  probe waits twice as long. A probe the link carried raises the known capacity, the
  bitrate recovers to it, and a bigger probe (x`probe_chain` each time, up to
  `probe_gain_max`) follows at once if the probe really sent its level, so a widened link
  is found within a few probes while a stable one never sees its bitrate swing. Cuts
  while holding shrink the margin (bursty encoders need headroom). With audio only there
  is no picture to carry padding, so there the bitrate itself is the probe.
- Rates are link rates: the encoder's bytes count with the container and transport
  overhead that LinkSample.wire_factor measures (MPEG-TS over SRT carries 15-30 % more than
  the encoder writes, FLV over TCP about what it writes), `overhead` until it is known.
- When even the floor does not fit, the bitrate goes below it with a frame-rate divisor
  (each frame keeps floor quality). Audio only (drop_video, which the publisher still
  relieves with one picture a second) is for a link whose known capacity cannot carry
  floor/max_fps_divisor besides the audio, or for the moments of a collapse that measured
  nothing yet: a deep cut on a link known to carry the smallest picture keeps it, and from
  audio only the smallest picture itself is the probe, however little silence and the
  missing picture send. Audio is never dropped.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum, StrEnum

from broadcaster.ratecontrol.sample import LinkSample

TRICKLE_KBPS = 24.0
MAX_OVERHEAD = 0.8        # a measured wire factor above 1.8 is a glitch, not a container
OVERHEAD_GAIN = 0.1       # per sample: the measured overhead is followed within ~1 s
STARVING_STALE_S = 1.0
PROBE_MAX_JUMP = 1.8


class Reason(StrEnum):
    """Why a decision was made (logged, traced; compares equal to its value)."""

    HOLD = "hold"             # nothing to change
    RECOVER = "recover"       # back towards the known capacity after a cut
    PROBE = "probe"           # padding tests the link above the known capacity
    RETREAT = "retreat"       # a probe found no room: only its padding stops
    RAMP = "ramp"             # no capacity known yet: climb
    CUT = "cut"               # overuse: down to what the link carries, less the queue
    EMERGENCY = "emergency"   # a queue still growing past emergency_delay_ms: fewer frames
    FLOOR = "floor"           # under the floor: fewer frames, or audio only


class ProbePhase(Enum):
    """Where the controller stands towards probing the link (with `_State.phase_since`)."""

    IDLE = "idle"             # below the known capacity (recovering), or none known
    PLATEAU = "plateau"       # holding at the known capacity: a probe may follow
    PROBING = "probing"       # padding tests the link above it


@dataclass(frozen=True)
class RateDecision:
    """What the encoder should do from now on."""

    video_kbps: int             # set codec_context.bit_rate = video_kbps * 1000
    fps_divisor: int = 1        # encode only frames with frame_index % fps_divisor == 0
    drop_video: bool = False    # the link cannot carry even a trickle of video: audio only
    reason: Reason = Reason.HOLD
    padding_kbps: int = 0       # filler to add to the video (a probe): the picture is untouched
    link_target_kbps: float = 0.0
    capacity_kbps: float | None = None   # last measured link capacity, if known


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


@dataclass
class _State:
    target: float                          # link kbps
    capacity: float | None = None          # link kbps measured while a queue stood
    capacity_at: float = -math.inf
    last_cut: float = -math.inf
    last_overuse: float = -math.inf
    phase: ProbePhase = ProbePhase.IDLE
    phase_since: float = -math.inf         # when the phase began
    probe_level: float = 0.0               # link kbps a probe tests (target + padding)
    probe_gain: float = 1.1
    probe_yield: float = 1.0               # what the encoder really sends / its target
    probe_base: float | None = None        # audio only: the target before the probe raised it
    offered: float | None = None           # what the sender wrote lately (link kbps), if known
    probe_failed_at: float = -math.inf
    probe_failed_capacity: float = 0.0     # what the link carried when the last probe failed
    below_floor: bool = False              # the last decision cut the frame rate
    probe_wait: float = 0.0
    margin: float = 0.92
    margin_at: float = -math.inf
    fps_divisor: int = 1
    expected: float = 0.0                  # link kbps the last decision should produce
    overhead: float = 0.06                 # measured container + transport overhead
    last_now: float | None = None
    delays: deque = field(default_factory=lambda: deque(maxlen=256))


class RateController:
    """Capacity-tracking rate control with a drain-aware cut. See the module docstring."""

    def __init__(self, config: RateControlConfig) -> None:
        self.config = config
        start = config.start_kbps if config.start_kbps is not None else config.ceiling_kbps
        self._s = _State(target=config.link_kbps(start), probe_wait=config.probe_wait_s,
                         margin=config.capacity_margin, expected=config.link_kbps(start),
                         overhead=config.overhead)

    @property
    def capacity_kbps(self) -> float | None:
        """Last link capacity measured while a queue stood (link kbps), or None."""
        return self._s.capacity

    def update(self, sample: LinkSample, current_video_kbps: float | None = None) -> RateDecision:
        """Take one measurement; return the bitrate (and frame-rate divisor) to use now.

        current_video_kbps is what the encoder runs at now, if the core changed or clamped
        it; None means "what I decided last time".
        """
        c, s = self.config, self._s
        now = sample.now
        dt = 0.0 if s.last_now is None else max(0.0, now - s.last_now)
        s.last_now = now
        if sample.wire_factor is not None and 0.9 <= sample.wire_factor <= 1.0 + MAX_OVERHEAD:
            # (smoothed: the factor moves with the audio's share of the stream; under 1
            # is FLV sending SPS/PPS once, counted as no overhead)
            s.overhead += OVERHEAD_GAIN * (max(0.0, sample.wire_factor - 1.0) - s.overhead)
        if current_video_kbps is not None:
            s.target = self._link(current_video_kbps)
        d = max(0.0, sample.queue_delay_ms)
        drain = max(0.0, sample.send_rate_kbps)
        # (the encoder's bytes: on the link they carry the container and transport overhead,
        # and every rate here is a link rate, so they are compared with that overhead added)
        s.offered = None if sample.offered_kbps is None else sample.offered_kbps * (1 + s.overhead)
        s.delays.append((now, d))
        while s.delays and now - s.delays[0][0] > 1.0:
            s.delays.popleft()
        standing = min(v for t, v in s.delays if now - t <= c.standing_window_s)
        growing = self._growing(now, d)
        draining = self._draining(now, d)

        # While a queue stands the link is saturated: what drains then is its capacity.
        # (A keyframe burst is such a moment, so capacity is re-measured every GOP for free.)
        # (Only the meter can tell a clean busy interval from one with losses, where the
        # acknowledged rate falls far short of the capacity, so none is guessed here.)
        busy = sample.busy_rate_kbps
        if busy is not None and busy < 0.5 * drain:
            # The link just carried twice that: a busy run that began in TCP slow start (a
            # new connection) or before a burst of ACKs says nothing about the capacity.
            busy = None
        if busy is not None and busy > 0:
            if s.capacity is not None and busy < 0.75 * s.capacity:
                s.margin = c.capacity_margin         # a different link: start afresh
            if s.capacity is None or (busy < s.capacity and now - s.capacity_at > 1.0):
                s.capacity = busy
            else:   # a narrowing link must be believed at once, a widening one confirmed
                # (a busy interval can read high: SRT's ACKs come in bursts; a widened link
                # is found by probes, which set the capacity they proved)
                gain = c.capacity_gain if busy > s.capacity else max(c.capacity_gain, 0.7)
                s.capacity += gain * (busy - s.capacity)
            s.capacity_at = now

        probing = s.phase is ProbePhase.PROBING
        overuse = ((standing > c.high_delay_ms and not draining) or (d > c.high_delay_ms and growing)
                   or sample.dropped_packets > 0)
        reason = Reason.HOLD
        if probing and d < c.emergency_delay_ms:
            # A probe by padding: any standing queue, or a busy rate (the link saturated)
            # below the probe, means no more room; a dwell without either means room.
            # (the raw busy rate: the smoothed capacity lags a widening link)
            # (a queue of one frame's worth comes and goes near a full link: not a verdict)
            # (and one tick over high_delay_ms is: a queue that zigzags on a full link never
            # "stands", so waiting for it to stand would leave the probe filling the link)
            full = (overuse or standing > c.probe_fail_delay_ms or d > c.high_delay_ms
                    or (growing and d > c.probe_fail_delay_ms)
                    or (busy is not None and 0 < busy < 0.95 * s.probe_level))
            if full:
                if busy is not None and busy > 0:
                    s.capacity = busy        # the probe filled the link: this is its capacity
                elif s.capacity is not None and drain > 0:
                    # (no busy run yet, but the link is full: it drains what it can. A
                    # token bucket lets a short probe through above its rate, so the
                    # capacity a passed probe set can be above the link; not under this)
                    s.capacity = min(s.capacity, max(drain, 0.8 * s.capacity))
                s.probe_failed_at = now
                s.probe_failed_capacity = max(s.capacity or 0.0, drain)
                self._end_probe(now, passed=False)
                reason = Reason.RETREAT      # only the padding stops: the picture never changed
            elif now - s.phase_since >= c.probe_dwell_s:
                self._end_probe(now, passed=True)
                reason = Reason.PROBE
            overuse = False              # (a probe answers for its own queue)
        elif (overuse and now - s.probe_failed_at < c.probe_settle_s and sample.dropped_packets == 0
              and not (growing and d > c.emergency_delay_ms)
              and drain >= c.narrowed_share * s.probe_failed_capacity):
            # The queue a failed probe left behind drains by itself now that the padding
            # stopped: it says nothing about the bitrate. It can go on growing for a few
            # ticks (padding already in the socket, a smoothed RTT catching up), so growth
            # alone is no verdict; a link that narrowed under the probe carries clearly
            # less than it did, and that is.
            overuse = False
        if overuse:
            s.last_overuse = now
            if now - s.last_cut >= c.cut_holdoff_s and (growing or sample.dropped_packets > 0
                                                         or now - s.last_cut >= 2 * c.cut_holdoff_s):
                fresh = s.capacity is not None and now - s.capacity_at <= 0.5
                lossy = sample.lost_packets > 0 or sample.dropped_packets > 0
                ref = s.capacity if fresh else (drain if drain > 0 else s.target)
                # The link's rate of the last moments, not of the meter's lagging window
                # (never under half of it: ACKs come in bunches), while the queue grows.
                recent = sample.recent_rate_kbps
                recent = (max(recent, 0.5 * drain) if growing and not lossy and recent
                          and recent > 0 else None)
                slope = self._slope(now) if growing else 0.0
                if growing:
                    # Fluid queue: delay grows at (sent - capacity) / capacity seconds per
                    # second, so the growth itself tells the capacity before any meter does.
                    if slope > 0:
                        ref = min(ref, s.expected / (1.0 + slope / 1000.0))
                    if recent is not None:
                        ref = min(ref, recent)
                # Drain the queue above low_delay_ms within drain_time_s (a big one faster).
                drain_time = c.drain_time_s if d < c.emergency_delay_ms else c.fast_drain_time_s
                # A growing queue keeps growing until the encoder shows the cut: drain that too.
                # (at the rate we send over what the link now carries: the delay's own slope
                # is measured at the meter's lagging drain and understates it at a step)
                if growing:
                    excess = max(slope / 1000.0, s.expected / ref - 1.0 if ref > 0 else 0.0)
                    ahead = d + excess * 1000.0 * c.encoder_lag_s
                else:
                    ahead = d
                frac = min(0.5, max(0.0, ahead - c.low_delay_ms) / 1000.0 / drain_time)
                # A cut while sitting at the plateau means the encoder is burstier than the
                # headroom allows: keep more headroom (quiet time gives it back slowly).
                if (not probing and s.capacity is not None
                        and s.target >= 0.97 * s.margin * s.capacity):
                    s.margin = max(c.min_capacity_margin, s.margin - 0.02)
                # (noisy delays must not zero the rate: never under half the drain, or of the
                # recent drain when the queue grows)
                floor = 0.5 * (s.capacity if fresh else drain)
                if recent is not None:
                    floor = min(floor, 0.5 * recent)
                new = min(s.target * c.min_cut, max(floor, ref * (1.0 - frac)))
                if lossy and not fresh and not growing:
                    # Under losses the acknowledged rate reads near zero (a cumulative ACK
                    # waits for the retransmission) and the backlog stands while the last
                    # cut drains it: nothing new about the link. One small step, not a
                    # cut to the "drain", which reads near zero and would drop the video
                    # for seconds; frame skipping already relieves the link, and a
                    # queue that grows again is cut as usual.
                    new = s.target * c.min_cut
                s.target = new
                if not fresh and not lossy and s.capacity is not None:
                    # No queue measured the link lately (losses, a stall): what we cut to is
                    # the best figure there is, so recovery does not climb back to a link
                    # that is gone; probes find out what is really there.
                    # (not under losses, where an acked rate reads near zero; and at most
                    # halved per cut)
                    s.capacity = min(s.capacity, max(ref, new, 0.5 * s.capacity))
                s.last_cut = now
                self._enter(ProbePhase.IDLE, now)
                s.probe_gain = c.probe_gain
                reason = Reason.CUT
        elif (reason is Reason.HOLD and standing < c.low_delay_ms
              and now - s.last_overuse >= c.increase_holdoff_s and dt > 0):
            wanted = s.expected if s.offered is None else min(s.expected, s.offered)
            # (a trickle, e.g. silent audio only, needs no proof: it may sit in a sender's
            # buffer waiting for a full packet)
            if drain + TRICKLE_KBPS >= c.utilisation_gate * wanted:  # the link carried what we sent
                reason = self._increase(now, dt)
        # Fast actuator: skipping frames acts on the next frame, a new bitrate a bit later.
        if d > c.emergency_delay_ms and growing:
            # Skip enough frames to bring what we send under what drains.
            need = 2
            if s.capacity is not None and s.capacity > 0 and now - s.capacity_at <= 0.5:
                need = math.ceil(s.expected / s.capacity)
            s.fps_divisor = min(c.max_fps_divisor, max(2, need, s.fps_divisor))
            reason = Reason.EMERGENCY
        elif d < c.high_delay_ms:
            s.fps_divisor = 1
        return self._decide(reason)

    # ------------------------------------------------------------------------------------
    def _link(self, video_kbps: float) -> float:
        return self.config.link_kbps(video_kbps, self._s.overhead)

    def _video(self, link_kbps: float) -> float:
        return self.config.video_kbps_for(link_kbps, self._s.overhead)

    @property
    def _min_video(self) -> float:
        """The smallest picture: floor quality at the deepest frame-rate cut (video kbps)."""
        return self.config.floor_kbps / self.config.max_fps_divisor

    def _carries_min_picture(self) -> bool:
        """The link capacity known carries the smallest picture besides the audio."""
        cap = self._s.capacity
        return cap is not None and self._link(self._min_video) <= cap

    def _growing(self, now: float, d: float) -> bool:
        """The queue rose over most ticks of the last growth_window_s, not in one jump.

        A keyframe is one jump followed by a fall; an overloaded link rises tick after tick
        (with jitter), so require a net rise and rising steps in at least 60 % of the ticks.
        """
        c = self.config
        pts = [v for t, v in self._s.delays if now - t <= c.growth_window_s]
        if len(pts) < 3:
            return False
        deltas = [b - a for a, b in zip(pts, pts[1:])]
        # A link step: three big rises in a row (a burst seen through ACK timing spans two).
        surge = len(deltas) >= 3 and min(deltas[-3:]) > 20.0
        return d - pts[0] > 10.0 and (surge or sum(x > 0 for x in deltas) >= 0.6 * len(deltas))

    def _slope(self, now: float) -> float:
        """Queue delay slope over growth_window_s, in ms per second."""
        pts = [(t, v) for t, v in self._s.delays if now - t <= self.config.growth_window_s]
        if len(pts) < 2 or pts[-1][0] - pts[0][0] <= 0:
            return 0.0
        return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])

    def _draining(self, now: float, d: float) -> bool:
        """The queue falls fast enough to be gone within drain_time_s (a burst, not overuse)."""
        c = self.config
        pts = [(t, v) for t, v in self._s.delays if now - t <= c.standing_window_s]
        if len(pts) < 2 or pts[-1][0] - pts[0][0] <= 0:
            return False
        slope = (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])   # ms per s
        return slope < 0 and d + slope * c.drain_time_s < c.low_delay_ms

    def _increase(self, now: float, dt: float) -> str:
        c, s = self.config, self._s
        ceiling = self._link(c.ceiling_kbps)
        if s.target >= ceiling:
            s.target = ceiling
            return Reason.HOLD
        if s.capacity is None:
            # (from audio only straight back to the smallest picture: nothing is known
            # against it, and a picture that stays away is a frozen broadcast)
            s.target = min(ceiling, max(s.target * (1 + c.fast_rate) ** dt,
                                        self._link(self._min_video)))
            return Reason.RAMP
        if now - s.last_cut > c.margin_recover_s and now - s.margin_at > c.margin_recover_s:
            s.margin = min(c.capacity_margin, s.margin + 0.01)
            s.margin_at = now
        level = s.margin * s.capacity
        if s.target < level * 0.98:
            s.target = min(ceiling, s.target + (level - s.target) * (1 - math.exp(-dt / c.recover_tau_s)))
            if s.phase is ProbePhase.PROBING:
                return Reason.PROBE
            self._enter(ProbePhase.IDLE, now)
            return Reason.RECOVER
        if s.phase is not ProbePhase.PROBING:
            if s.phase is ProbePhase.IDLE:
                self._enter(ProbePhase.PLATEAU, now)
            # Bursts (keyframes) that still make a queue keep the capacity figure fresh:
            # then it is known and there is nothing to probe for.
            # Below the floor (frame-rate cut, audio only) we send too little to make a queue,
            # so no burst will ever re-measure the capacity: probe soon.
            starving = self._video(s.target) < c.floor_kbps
            stale_s, wait_s = (STARVING_STALE_S, STARVING_STALE_S) if starving else \
                (c.capacity_stale_s, s.probe_wait)
            fresh = now - s.capacity_at < stale_s
            if s.target >= 0.98 * ceiling or fresh or now - s.phase_since < wait_s:
                return Reason.HOLD
            self._start_probe(now)
        return Reason.PROBE

    def _start_probe(self, now: float) -> None:
        """Test the link above the known capacity with padding."""
        c, s = self.config, self._s
        self._enter(ProbePhase.PROBING, now)
        ceiling = self._link(c.ceiling_kbps)
        # Encoders fall short of their target (x264 ABR by ~5 %): pad from what is really sent.
        sending = s.expected if s.offered is None else min(s.expected, s.offered)
        s.probe_yield = sending / s.expected if s.expected > 0 else 1.0
        # (under 2x what is sent: the meters take a jump of the writes to twice their median
        # for a keyframe burst)
        s.probe_level = min(max(s.capacity or 0.0, s.target) * s.probe_gain,
                            max(sending, 1.0) * PROBE_MAX_JUMP, ceiling / s.margin)
        s.probe_base = None
        if self._video(s.target) < self._min_video:
            # Audio only: no picture to pad, so the picture is the probe, at least the
            # smallest one (however little the silence and the missing picture send now).
            s.probe_base = s.target
            s.probe_level = min(max(s.probe_level, self._link(self._min_video)), ceiling / s.margin)
            s.target = s.probe_level

    def _end_probe(self, now: float, passed: bool) -> None:
        """A probe the link carried raises the known capacity and chains a bigger probe at
        once (a widened link is found in a few probes); one it did not carry waits longer."""
        c, s = self.config, self._s
        self._enter(ProbePhase.PLATEAU, now)      # (unless a bigger probe follows at once)
        # No queue while we sent this: the link carries at least that much (if it was more
        # than the capacity known; an encoder short of its target may have sent less).
        sent = s.offered if s.offered is not None else s.expected
        if not passed and s.probe_base is not None:
            s.target = min(s.target, s.probe_base)
        if passed:
            known = s.capacity or 0.0
            taught = sent > 1.03 * known         # the probe raised the capacity figure
            if sent > known:
                s.capacity = sent
                s.capacity_at = now
            if taught:
                # (only a probe that taught something resets the wait: on a steady link
                # the first probe passes just under the capacity and the bigger one after
                # it fails, so resetting the wait there would pad the link every
                # probe_wait_s for nothing)
                s.probe_wait = c.probe_wait_s
            ceiling = self._link(c.ceiling_kbps)
            if s.target < 0.98 * ceiling:
                if sent >= c.probe_reach * s.probe_level and s.probe_level < 0.99 * ceiling / s.margin:
                    s.probe_gain = min(c.probe_gain_max, s.probe_gain * c.probe_chain)
                    self._start_probe(now)  # the next, bigger probe starts at once
                    return
                # (a probe the encoder and padding fell short of proves only what was
                # sent: on a link just above that, a bigger probe would only fail and
                # leave a queue; but if it raised the capacity known, the link may well
                # have widened, so the same probe goes on from the new figure)
                if taught:
                    self._start_probe(now)
                    return
                if sent < known:
                    # It never even sent the capacity known: it tested nothing. The next
                    # one (after the usual wait) asks for more, or a figure that a stall
                    # left too low would never be probed past (an encoder that undershoots
                    # its target keeps each probe's padding small).
                    s.probe_gain = min(c.probe_gain_max, s.probe_gain * c.probe_chain)
                    return
        else:
            s.probe_wait = min(c.probe_wait_max_s, s.probe_wait * 2.0)
        s.probe_gain = c.probe_gain

    def _enter(self, phase: ProbePhase, now: float) -> None:
        self._s.phase, self._s.phase_since = phase, now

    def _decide(self, reason: Reason) -> RateDecision:
        c, s = self.config, self._s
        s.target = max(s.target, self._link(0.0))          # audio always goes
        video = self._video(s.target)
        divisor = s.fps_divisor
        drop_video = False
        # (hysteresis: once below the floor, whole frame rate only back nearer the floor,
        # or a link right at the floor would flip the frame rate every few seconds)
        if video < c.floor_kbps * ((1 + c.floor_tolerance) / 2 if s.below_floor else c.floor_tolerance):
            # Even the floor does not fit: fewer frames, each at floor quality.
            need = max(1, math.ceil(c.floor_kbps / max(video, 1e-6)))
            divisor = max(divisor, min(c.max_fps_divisor, need))
            # Audio only is for a link that cannot carry the smallest picture besides the
            # audio: a deep cut (an emergency, a failed probe) on a link known to carry it
            # keeps the picture moving at the lowest frame rate.
            drop_video = video < self._min_video and not self._carries_min_picture()
            reason = Reason.FLOOR if reason in (Reason.HOLD, Reason.RECOVER, Reason.PROBE,
                                                Reason.RAMP) else reason
            s.below_floor = True
        else:
            s.below_floor = False
        video = min(c.ceiling_kbps, max(video, c.floor_kbps / c.max_fps_divisor))
        padding = 0.0
        sending = self._link(0.0 if drop_video else video)
        if s.phase is ProbePhase.PROBING and not drop_video:
            padding = max(0.0, s.probe_level - sending * s.probe_yield)
        s.expected = sending + padding
        return RateDecision(video_kbps=int(round(video)), fps_divisor=divisor,
                            drop_video=drop_video, reason=reason, link_target_kbps=s.target,
                            capacity_kbps=s.capacity, padding_kbps=int(round(padding)))
