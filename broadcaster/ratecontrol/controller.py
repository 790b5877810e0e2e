"""Rate control: pick the encoder bitrate from measurements of the upstream link.

A pure policy: feed update() one LinkSample per tick (with `now`), get a RateDecision back.
Nothing here reads a clock or a socket, so it is tested with plain numbers. It is split the
way well-known congestion controllers are (aiortc's rate.py: inter-arrival -> overuse
estimator -> detector -> AIMD), one part per module, each pure:

    LinkSample -> WireOverhead (overhead.py)       container + transport bytes, measured
               -> QueueDetector (overuse.py)       standing / growing / draining queue: overuse?
               -> CapacityEstimate (capacity.py)   the drain while a queue stood, kept while idle
               -> Probe (probe.py)                 IDLE / PLATEAU / PROBING: padding tests the link
               -> size_cut (cut.py)                one cut to capacity less what drains the queue
               -> Headroom (headroom.py)           the share of the capacity held at
               -> FrameRate (frame_rate.py)        frames skipped: emergency, below the floor
               -> RateDecision

How it improves on OBS's dynamic bitrate (cuts of 2-10 % at 200/400/700 ms of queue, +20 %
every 4 s) and Belabox (unacked packets vs RTT thresholds, constant creep): capacity is
measured, not guessed (keyframe bursts re-measure it every GOP); a cut goes in one step to
what drains the queue in time, instead of a ladder of small cuts; increase is gated (short
queue, no recent overuse, the link carried what we sent): back to the headroom's share of
the capacity quickly (recover), then hold, and only when no queue has measured the capacity
for `capacity_stale_s` does a probe test for more. Audio is never dropped, and audio only is
for a link whose known capacity cannot carry the smallest picture besides the audio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

from broadcaster.ratecontrol.audio_rate import audio_kbps_for
from broadcaster.ratecontrol.capacity import CapacityEstimate
from broadcaster.ratecontrol.cut import FRESH_S, cut_due, size_cut
from broadcaster.ratecontrol.frame_rate import FrameRate
from broadcaster.ratecontrol.headroom import Headroom
from broadcaster.ratecontrol.overhead import WireOverhead
from broadcaster.ratecontrol.overuse import QueueDetector, QueueReading
from broadcaster.ratecontrol.probe import (
    NEAR_CEILING,
    Probe,
    ProbeNext,
    ProbePhase,
    ProbeVerdict,
)
from broadcaster.ratecontrol.sample import LinkSample
from broadcaster.ratecontrol.tuning import RateControlConfig

__all__ = ["ProbePhase", "RateControlConfig", "RateController", "RateDecision", "Reason"]

TRICKLE_KBPS = 24.0        # a trickle (silent audio only) needs no proof the link carried it
STARVING_STALE_S = 1.0     # below the floor nothing queues: probe after this long
RECOVERED = 0.98           # a target this close to the headroom's level has recovered


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


class RateController:
    """Capacity-tracking rate control with a drain-aware cut, composed of the parts named in
    the module docstring."""

    def __init__(self, config: RateControlConfig) -> None:
        self.config = config
        start = config.start_kbps if config.start_kbps is not None else config.ceiling_kbps
        self.overhead = WireOverhead(config.overhead)
        self.queue = QueueDetector(config)
        self.capacity = CapacityEstimate(config)
        self.probe = Probe(config)
        self.headroom = Headroom(config)
        self.frame_rate = FrameRate(config)
        self._target = config.link_kbps(start)       # link kbps
        self._expected = config.link_kbps(start)     # link kbps the last decision should produce
        self._offered: float | None = None           # link kbps the sender wrote lately, if known
        self._last_cut = -math.inf
        self._last_overuse = -math.inf
        self._last_now: float | None = None

    @property
    def capacity_kbps(self) -> float | None:
        """Last link capacity measured while a queue stood (link kbps), or None."""
        return self.capacity.kbps

    def session_audio_kbps(self, configured_kbps: int) -> int:
        """The audio bitrate a session opened now should use (audio_rate.py): lower on a
        link measured to be narrow."""
        return audio_kbps_for(configured_kbps, self.capacity.kbps, margin=self.headroom.margin,
                              overhead=self.overhead.value)

    def budget_audio(self, audio_kbps: float) -> None:
        """The audio the output session carries now (chosen when it opened): the link budget
        keeps this much for audio from now on. (Only the budget uses audio_kbps; the parts
        keep the config they were made with.)"""
        if audio_kbps != self.config.audio_kbps:
            self.config = replace(self.config, audio_kbps=float(audio_kbps))

    def update(self, sample: LinkSample, current_video_kbps: float | None = None) -> RateDecision:
        """Take one measurement; return the bitrate (and frame-rate divisor) to use now.

        current_video_kbps is what the encoder runs at now, if the core changed or clamped
        it; None means "what I decided last time".
        """
        c, now = self.config, sample.now
        dt = 0.0 if self._last_now is None else max(0.0, now - self._last_now)
        self._last_now = now
        self.overhead.observe(sample.wire_factor)
        if current_video_kbps is not None:
            self._target = self._link(current_video_kbps)
        drain = max(0.0, sample.send_rate_kbps)
        # (the encoder's bytes: on the link they carry the container and transport overhead)
        self._offered = None if sample.offered_kbps is None else \
            sample.offered_kbps * (1 + self.overhead.value)
        queue = self.queue.observe(now, sample.queue_delay_ms, sample.dropped_packets)
        busy = CapacityEstimate.busy_reading(sample.busy_rate_kbps, drain)
        if self.capacity.observe_busy(now, busy):
            self.headroom.reset()                     # a different link: start afresh

        overuse, reason = queue.overuse, Reason.HOLD
        if self.probe.probing and queue.delay_ms < c.emergency_delay_ms:
            reason = self._judge_probe(now, queue, busy, drain)
            overuse = False                           # (a probe answers for its own queue)
        elif overuse and sample.dropped_packets == 0 and self.probe.settling(now, drain) \
                and not (queue.growing and queue.delay_ms > c.emergency_delay_ms):
            # The queue a failed probe left behind drains by itself now that the padding
            # stopped: it says nothing about the bitrate (it can grow for a few ticks:
            # padding already in the socket, a smoothed RTT catching up).
            overuse = False
        if overuse:
            self._last_overuse = now
            if cut_due(c, now, self._last_cut, queue, sample.dropped_packets):
                reason = self._cut(now, queue, sample, drain)
        elif (reason is Reason.HOLD and queue.room and dt > 0
              and now - self._last_overuse >= c.increase_holdoff_s and self._carried(drain)):
            reason = self._increase(now, dt)
        if self.frame_rate.emergency(queue, self._expected, self._fresh_capacity(now)):
            reason = Reason.EMERGENCY
        return self._decide(reason)

    # -- the steps of one update -----------------------------------------------------------
    def _judge_probe(self, now: float, queue: QueueReading, busy: float | None,
                     drain: float) -> Reason:
        verdict = self.probe.verdict(now, queue, busy)
        if verdict is ProbeVerdict.REFUSED:
            self.capacity.probe_filled(busy, drain)
            base = self.probe.refused(now, max(self.capacity.kbps or 0.0, drain))
            if base is not None:                      # (the picture was the probe)
                self._target = min(self._target, base)
            return Reason.RETREAT                     # only the padding stops
        if verdict is ProbeVerdict.CARRIED:
            # No queue while we sent this: the link carries at least that much (an encoder
            # short of its target may have sent less than the probe's level).
            sent = self._offered if self._offered is not None else self._expected
            known = self.capacity.kbps or 0.0
            self.capacity.probe_carried(now, sent)
            ceiling = self._link(self.config.ceiling_kbps)
            following = self.probe.carried(now, sent=sent, known=known,
                                           room=self._target < NEAR_CEILING * ceiling,
                                           limit=self._probe_limit())
            if following is not ProbeNext.HOLD:
                self._start_probe(now)
            return Reason.PROBE
        return Reason.HOLD

    def _cut(self, now: float, queue: QueueReading, sample: LinkSample, drain: float) -> Reason:
        fresh = self._fresh_capacity(now)
        lossy = sample.lost_packets > 0 or sample.dropped_packets > 0
        cut = size_cut(self.config, target=self._target, expected=self._expected, queue=queue,
                       drain=drain, recent=sample.recent_rate_kbps, fresh_capacity=fresh,
                       lossy=lossy)
        if not self.probe.probing:
            self.headroom.cut_at(self._target, self.capacity.kbps)
        self._target = cut.target
        if fresh is None and not lossy:
            # (not under losses, where an acknowledged rate reads near zero)
            self.capacity.cut_to(cut.reference, cut.target)
        self._last_cut = now
        self.probe.cut(now)
        return Reason.CUT

    def _carried(self, drain: float) -> bool:
        """The link carried what we sent (what the encoder wrote, if it wrote less than the
        decision asked: silence, a still picture)."""
        wanted = self._expected if self._offered is None else min(self._expected, self._offered)
        # (a trickle, e.g. silent audio only, needs no proof: it may sit in a sender's
        # buffer waiting for a full packet)
        return drain + TRICKLE_KBPS >= self.config.utilisation_gate * wanted

    def _increase(self, now: float, dt: float) -> Reason:
        """Ramp with no capacity known, recover towards it, hold at it, or start a probe."""
        c, probe = self.config, self.probe
        ceiling = self._link(c.ceiling_kbps)
        if self._target >= ceiling:
            self._target = ceiling
            return Reason.HOLD
        capacity = self.capacity.kbps
        if capacity is None:
            # (from audio only straight back to the smallest picture: nothing is known
            # against it, and a picture that stays away is a frozen broadcast)
            self._target = min(ceiling, max(self._target * (1 + c.fast_rate) ** dt,
                                            self._link(self.frame_rate.smallest_video_kbps)))
            return Reason.RAMP
        self.headroom.recover(now, self._last_cut)
        level = self.headroom.level(capacity)
        if self._target < level * RECOVERED:
            self._target = min(ceiling, self._target + (level - self._target)
                               * (1 - math.exp(-dt / c.recover_tau_s)))
            if probe.probing:
                return Reason.PROBE
            probe.enter(ProbePhase.IDLE, now)
            return Reason.RECOVER
        if probe.probing:
            return Reason.PROBE
        if probe.phase is ProbePhase.IDLE:
            probe.enter(ProbePhase.PLATEAU, now)
        # Bursts (keyframes) that still make a queue keep the capacity figure fresh: then
        # there is nothing to probe for. Below the floor (frame-rate cut, audio only) we send
        # too little to make a queue, so no burst will ever re-measure it: probe soon.
        if self._video(self._target) < c.floor_kbps:
            stale_s, wait_s = STARVING_STALE_S, STARVING_STALE_S
        else:
            stale_s, wait_s = c.capacity_stale_s, probe.wait
        if (self._target >= NEAR_CEILING * ceiling or self.capacity.age(now) < stale_s
                or not probe.due(now, wait_s)):
            return Reason.HOLD
        self._start_probe(now)
        return Reason.PROBE

    def _start_probe(self, now: float) -> None:
        smallest = self.frame_rate.smallest_video_kbps
        audio_only = self._video(self._target) < smallest
        self._target = self.probe.start(
            now, capacity=self.capacity.kbps, target=self._target, expected=self._expected,
            offered=self._offered, limit=self._probe_limit(),
            smallest_picture=self._link(smallest) if audio_only else None)

    def _decide(self, reason: Reason) -> RateDecision:
        c = self.config
        self._target = max(self._target, self._link(0.0))          # audio always goes
        video = self._video(self._target)
        smallest = self.frame_rate.smallest_video_kbps
        pictures = self.frame_rate.pictures(video, self.capacity.carries(self._link(smallest)))
        if pictures.below_floor and reason in (Reason.HOLD, Reason.RECOVER, Reason.PROBE,
                                               Reason.RAMP):
            reason = Reason.FLOOR
        video = min(c.ceiling_kbps, max(video, smallest))
        sending = self._link(0.0 if pictures.drop_video else video)
        padding = 0.0 if pictures.drop_video else self.probe.padding(sending)
        self._expected = sending + padding
        return RateDecision(video_kbps=int(round(video)), fps_divisor=pictures.fps_divisor,
                            drop_video=pictures.drop_video, reason=reason,
                            link_target_kbps=self._target, capacity_kbps=self.capacity.kbps,
                            padding_kbps=int(round(padding)))

    # -- units ----------------------------------------------------------------------------
    def _link(self, video_kbps: float) -> float:
        return self.config.link_kbps(video_kbps, self.overhead.value)

    def _video(self, link_kbps: float) -> float:
        return self.config.video_kbps_for(link_kbps, self.overhead.value)

    def _probe_limit(self) -> float:
        """The highest level worth probing: the ceiling's plateau (link kbps)."""
        return self._link(self.config.ceiling_kbps) / self.headroom.margin

    def _fresh_capacity(self, now: float) -> float | None:
        """The capacity, if a queue or probe measured it within FRESH_S."""
        return self.capacity.kbps if self.capacity.age(now) <= FRESH_S else None
