"""The rate controller driven by a fluid-queue link simulator, against the issue's targets.

Targets (issue 3): after a 3 -> 1 Mbit/s step the queueing delay is under 200 ms within 2 s
and peaks under 1 s; after a step up, 90 % of capacity within 10 s; steady utilisation
>= 80 % with fewer than 2 oscillations a minute. A fixed bitrate must fail them.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from broadcaster.ratecontrol.controller import (
    RateControlConfig,
    RateController,
    RateDecision,
)
from broadcaster.ratecontrol.sample import LinkSample
from tests.support.linksim import (
    cuts,
    oscillations,
    peak_delay,
    settle_time,
    simulate,
    steps,
    time_to_fraction,
    utilisation,
    worst_freeze,
)

CFG = RateControlConfig(floor_kbps=300, ceiling_kbps=4000, start_kbps=2500)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_step_down_3_to_1_drains_the_queue_fast(seed):
    tr = simulate(steps((0, 3000), (30, 1000)), 60, RateController(CFG), seed=seed)
    # Standing queue under 200 ms within 2 s; a keyframe alone takes ~200 ms to serialise
    # at 1 Mbit/s, so excursions shorter than 0.25 s are not counted as "not settled" ...
    assert settle_time(tr, 30, 60, burst_s=0.25) <= 2.0
    assert peak_delay(tr, 30, 60) < 1000
    assert peak_delay(tr, 33, 60) < 300           # ... and they stay small


def test_collapse_to_half_a_megabit_recovers():
    # A 6x collapse is beyond the 3 -> 1 target: 2.5 Mbit/s of excess for the 0.2 s
    # the encoder needs to react already queues over a second, so the bounds are looser.
    tr = simulate(steps((0, 3000), (30, 500)), 60, RateController(CFG))
    assert settle_time(tr, 30, 60, burst_s=0.25) <= 3.5
    assert peak_delay(tr, 30, 60) < 2000
    assert peak_delay(tr, 36, 60) < 400


@pytest.mark.parametrize("low,seed", [(1000, 1), (1000, 4), (500, 1), (500, 5)])
def test_step_up_reaches_90_percent_within_10_s(low, seed):
    tr = simulate(steps((0, low), (40, 3000)), 70, RateController(CFG), seed=seed)
    assert time_to_fraction(tr, 40, 70, 0.9) <= 10.0
    assert peak_delay(tr, 40, 70) < 600


@pytest.mark.parametrize("capacity,jitter", [(3000, 0.15), (1000, 0.15), (3000, 0.3)])
def test_steady_link_is_used_without_oscillation(capacity, jitter):
    tr = simulate(steps((0, capacity)), 200, RateController(CFG), jitter=jitter)
    minutes = (200 - 30) / 60
    assert utilisation(tr, 30, 200) >= 0.8
    assert oscillations(tr, 30, 200) / minutes < 2
    if jitter <= 0.15:
        assert cuts(tr, 30, 200) / minutes < 2      # even small (>= 5 %) cuts are rare
    else:
        assert cuts(tr, 30, 200) / minutes < 6      # very bursty frames: small cuts, no swings
    assert peak_delay(tr, 30, 200) < 400


class _Ticker:
    """Drives a controller with one sample per 100 ms tick (plain numbers)."""

    def __init__(self):
        self.ctl = RateController(CFG)
        self.now = 0.0

    def __call__(self, delay_ms, busy=None, send=2800.0):
        self.now += 0.1
        return self.ctl.update(LinkSample(now=self.now, send_rate_kbps=send, queue_delay_ms=delay_ms,
                                          busy_rate_kbps=busy,
                                          offered_kbps=send / (1 + CFG.overhead)))  # (encoder bytes)

    def until_probe(self):
        """A queue measures the capacity (3000), the target settles at its margin, a probe starts."""
        self(150.0, busy=3000.0)
        for _ in range(100):
            dec = self(0.0)
            if dec.padding_kbps:
                return dec
        raise AssertionError("no probe within 10 s of a steady link")

    def until_retreat(self):
        """A queue builds under the probe: no room."""
        for delay in (60.0, 70.0, 80.0):
            dec = self(delay)
            if dec.reason == "retreat":
                return dec
        return dec


def test_a_probe_the_link_refuses_stops_the_padding_without_a_cut():
    tick = _Ticker()
    dec = tick.until_probe()
    assert dec.padding_kbps > 0 and dec.reason == "probe"
    held = dec.video_kbps
    dec = tick.until_retreat()
    assert dec.padding_kbps == 0 and dec.reason == "retreat"
    assert dec.video_kbps == held
    for delay in (110.0, 130.0, 125.0, 90.0, 40.0):  # the probe's own queue drains: no cut
        dec = tick(delay)
        assert dec.video_kbps == held and dec.reason != "cut"


def test_a_link_that_narrows_under_a_failed_probe_is_still_cut():
    tick = _Ticker()
    held = tick.until_probe().video_kbps
    tick.until_retreat()
    # the queue keeps growing after the padding stopped: cut before it reaches emergency
    decisions = [tick(delay, send=1000.0) for delay in (130.0, 190.0, 250.0)]
    assert "cut" in [d.reason for d in decisions]
    assert decisions[-1].video_kbps < 0.7 * held


def test_a_failed_probes_queue_that_grows_on_while_the_link_carries_as_before_is_no_cut():
    # TCP: padding already in the socket and a smoothed RTT that catches up make the queue
    # grow for a few ticks after the retreat; the link still carries what it did
    tick = _Ticker()
    held = tick.until_probe().video_kbps
    tick.until_retreat()
    for delay in (110.0, 150.0, 190.0, 220.0, 240.0, 180.0, 120.0, 60.0, 30.0):
        dec = tick(delay, busy=2900.0)
        assert dec.reason != "cut" and dec.video_kbps >= held, (delay, dec)


def test_a_probe_that_fell_short_of_its_level_is_not_followed_by_a_bigger_one():
    tick = _Ticker()
    first = tick.until_probe()
    # the encoder and the padding together sent 2800 of the 3180 asked (x264 undershoots):
    # no queue, but no proof of room above what was sent either
    for _ in range(12):
        dec = tick(0.0, send=2800.0)
    assert dec.padding_kbps == 0 or dec.padding_kbps <= first.padding_kbps * 1.05, dec
    assert tick.ctl.capacity_kbps == pytest.approx(3000.0)
    # one that reached its level is followed at once by a bigger one (a widened link)
    tick = _Ticker()
    first = tick.until_probe()
    reached = 3000.0 * 1.1
    padded = [tick(0.0, send=reached).padding_kbps for _ in range(12)]
    assert max(padded) > 1.3 * first.padding_kbps, padded


def test_a_bigger_probe_that_fell_short_but_raised_the_capacity_goes_on():
    # a widened link: the chained probe asked for 1.65 x, the encoder ramping towards it
    # sent 1.2 x without a queue; the capacity known rose, so probing goes on at once
    tick = _Ticker()
    tick.until_probe()
    for _ in range(9):
        dec = tick(0.0, send=3300.0)                  # the first probe reached its level
    assert dec.padding_kbps > 0
    for _ in range(9):
        dec = tick(0.0, send=3600.0)
    assert tick.ctl.capacity_kbps == pytest.approx(3600.0)
    assert dec.padding_kbps > 0 and dec.reason in ("probe", "recover"), dec


def test_a_standing_backlog_under_losses_is_stepped_down_not_cut_to_the_acked_rate():
    # SRT after a step down: losses stall the cumulative ACK (the acked rate reads ~50
    # kbit/s) while the backlog of the last cut stands near the latency; cutting to that
    # "drain" sent the anchor to audio only for seconds
    ctl = RateController(CFG)
    now = 0.0
    for _ in range(30):
        now += 0.1
        dec = ctl.update(LinkSample(now=now, send_rate_kbps=1000.0, queue_delay_ms=0.0,
                                    busy_rate_kbps=1000.0 if now < 0.3 else None))
    held = dec.video_kbps
    for _ in range(20):
        now += 0.1
        dec = ctl.update(LinkSample(now=now, send_rate_kbps=50.0, queue_delay_ms=900.0,
                                    lost_packets=12))
    assert not dec.drop_video
    assert dec.video_kbps >= 0.6 * held, (held, dec)
    assert dec.reason in ("cut", "hold", "floor")


def test_fixed_bitrate_baseline_fails_the_targets():
    sched = steps((0, 3000), (30, 1000), (60, 3000))
    high = simulate(sched, 60, None, fixed_video_kbps=2500, config=CFG)
    assert math.isinf(settle_time(high, 30, 60)) and peak_delay(high, 30, 60) > 10_000
    low = simulate(steps((0, 3000)), 60, None, fixed_video_kbps=800, config=CFG)
    assert utilisation(low, 10, 60) < 0.5           # a safe fixed rate wastes the link


def test_below_the_floor_the_frame_rate_drops_and_audio_stays():
    ctl = RateController(CFG)
    tr = simulate(steps((0, 3000), (20, 300)), 60, ctl)
    assert peak_delay(tr, 30, 60) < 600
    assert max(tr.fps_divisor[int(30 * 20):]) >= 2
    assert tr.frames_dropped > 0
    dec = ctl.update(LinkSample(now=60.0, send_rate_kbps=300, queue_delay_ms=0))
    assert dec.video_kbps < CFG.floor_kbps and dec.fps_divisor >= 2 and not dec.drop_video


def test_a_link_too_narrow_for_video_sends_audio_and_comes_back():
    ctl = RateController(CFG)
    tr = simulate(steps((0, 3000), (20, 180), (60, 3000)), 90, ctl)
    dropped = [d > 1000 for d in tr.fps_divisor[int(25 * 20):int(60 * 20)]]
    assert sum(dropped) > 0.5 * len(dropped)        # mostly audio only (136 kbit/s fits)
    assert peak_delay(tr, 45, 60) < 400             # once the backlog of the collapse is gone
    assert time_to_fraction(tr, 60, 90, 0.9) <= 20  # and video comes back with the link


def test_ceiling_is_never_exceeded_and_start_is_respected():
    ctl = RateController(RateControlConfig(floor_kbps=200, ceiling_kbps=1500, start_kbps=700))
    first = ctl.update(LinkSample(now=0.0, send_rate_kbps=0, queue_delay_ms=0))
    assert first.video_kbps == 700
    tr = simulate(steps((0, 10_000)), 40, ctl)
    assert max(tr.video_kbps) <= 1500 and tr.video_kbps[-1] == 1500


def test_encoder_reported_bitrate_is_taken_as_the_current_state():
    ctl = RateController(CFG)
    dec = ctl.update(LinkSample(now=0.0, send_rate_kbps=900, queue_delay_ms=0), current_video_kbps=900)
    assert dec.video_kbps == 900


@pytest.mark.parametrize("kwargs,message", [
    (dict(floor_kbps=0, ceiling_kbps=100), "floor_kbps"),
    (dict(floor_kbps=500, ceiling_kbps=100), "ceiling_kbps"),
    (dict(floor_kbps=100, ceiling_kbps=500, start_kbps=50), "start_kbps"),
    (dict(floor_kbps=100, ceiling_kbps=500, low_delay_ms=200), "low_delay_ms"),
    (dict(floor_kbps=100, ceiling_kbps=500, max_fps_divisor=0), "max_fps_divisor"),
])
def test_bad_config_is_refused_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RateControlConfig(**kwargs)


def _settled_video(wire_factor):
    ctl = RateController(dataclasses.replace(CFG, start_kbps=CFG.floor_kbps))
    now, dec = 0.0, None
    for i in range(100):
        now += 0.1
        dec = ctl.update(LinkSample(now=now, send_rate_kbps=900.0, queue_delay_ms=0.0,
                                    busy_rate_kbps=1000.0 if i % 10 == 0 else None,
                                    wire_factor=wire_factor))
    return dec


def test_the_measured_container_overhead_is_budgeted():
    # MPEG-TS over SRT carries ~30 % more than the encoder writes at 1 Mbit/s; FLV ~0 %:
    # the same link leaves less picture for the first
    ts, flv = _settled_video(1.3), _settled_video(1.0)
    assert ts.video_kbps < 0.8 * flv.video_kbps
    for dec, factor in ((ts, 1.3), (flv, 1.0)):
        on_the_link = (dec.video_kbps + CFG.audio_kbps) * factor
        assert 0.85 * 1000 <= on_the_link <= 0.95 * 1000, (factor, dec)


def test_a_probe_on_a_queue_that_zigzags_above_high_delay_ends():
    # a full link: the queue jumps up and down with each burst and never "stands"
    tick = _Ticker()
    tick.until_probe()
    reasons = [tick(delay).reason for delay in (50.0, 140.0, 40.0, 150.0)]
    assert "retreat" in reasons[:2], reasons


def _cut_at_a_step(recent):
    ctl = RateController(CFG)
    now = 0.0
    for i in range(30):
        now += 0.1
        ctl.update(LinkSample(now=now, send_rate_kbps=2800.0, queue_delay_ms=0.0,
                              busy_rate_kbps=3000.0 if i == 0 else None))
    dec = None
    # (the queue's growth in ms, at the lagging drain, understates the overload too)
    for delay, send in ((60.0, 2700.0), (100.0, 2400.0), (140.0, 2100.0), (180.0, 1900.0),
                        (220.0, 1900.0)):
        now += 0.1
        dec = ctl.update(LinkSample(now=now, send_rate_kbps=send, queue_delay_ms=delay,
                                    recent_rate_kbps=recent))
        if dec.reason in ("cut", "emergency"):
            return dec
    return dec


def test_a_cut_at_a_step_down_is_sized_by_the_recent_drain():
    # 3 -> 1 Mbit/s: the meter's 0.5 s window still reads ~2 Mbit/s, the last 0.2 s 1 Mbit/s
    lagging, recent = _cut_at_a_step(None), _cut_at_a_step(1000.0)
    assert recent.link_target_kbps <= 1100.0          # (never under half the window's drain)
    assert recent.link_target_kbps < 0.8 * lagging.link_target_kbps


def test_a_probe_that_a_token_bucket_let_through_does_not_leave_the_capacity_above_the_link():
    # the link's bucket passed a short probe at 10 % over its rate; the bigger probe after
    # it fills the link, which drains 3000 (no busy run measured yet)
    tick = _Ticker()
    tick.until_probe()
    for _ in range(9):
        tick(0.0, send=3300.0)
    assert tick.ctl.capacity_kbps == pytest.approx(3300.0)
    dec = tick(150.0, send=3000.0)
    assert dec.reason == "retreat"
    assert tick.ctl.capacity_kbps == pytest.approx(3000.0)


def test_a_probe_that_never_sent_the_capacity_known_is_followed_by_a_bigger_one():
    # the capacity figure is from a stall and too low; the encoder undershoots, so a probe
    # to 1.06 x that figure never even sends it: the next probe must ask for more
    tick = _Ticker()
    first = tick.until_probe()
    for _ in range(9):
        dec = tick(0.0, send=2700.0)
    assert dec.padding_kbps == 0
    for _ in range(100):
        dec = tick(0.0, send=2700.0)
        if dec.padding_kbps:
            break
    assert dec.padding_kbps > 1.5 * first.padding_kbps, (first, dec)


# -- issue 13: a silent anchor (audio makes a few kbit/s of the 128 budgeted) -----------------
SILENT_720P = RateControlConfig(floor_kbps=250, ceiling_kbps=3000, start_kbps=2500)
SILENT_AUDIO_BUDGET = 128


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_silent_scene_keeps_its_picture_moving_after_a_step_to_400_kbit(seed):
    tr = simulate(steps((0, 6000), (20, 400)), 60, RateController(SILENT_720P), seed=seed,
                  audio_sent_kbps=4.0)
    # the link carries far more than the audio: the picture never stops for long ...
    assert worst_freeze(tr, 20, 60) <= 1.0
    # ... and soon carries a fair share of what the link leaves over the audio
    late = [v for t, v, d in zip(tr.t, tr.video_kbps, tr.fps_divisor) if t >= 30]
    assert sum(late) / len(late) >= 0.5 * (400 - SILENT_AUDIO_BUDGET)


def _audio_only_after_a_collapse(ctl: RateController, now: float) -> tuple[float, RateDecision]:
    """A link that stops carrying anything measurable: a queue grows and nothing drains
    while busy, so no capacity is known; the controller ends up sending audio only."""
    dec = None
    for i in range(40):
        now += 0.1
        dec = ctl.update(LinkSample(now=now, send_rate_kbps=60.0, queue_delay_ms=200.0 + 150.0 * i,
                                    offered_kbps=2000.0))
    assert dec.drop_video, dec
    return now, dec


def test_audio_only_with_nothing_to_send_brings_the_picture_back_within_a_second_or_so():
    """A silent anchor and no picture send a few kbit/s: no queue to measure, no picture
    to carry padding. The picture itself is the probe, at least the smallest one."""
    ctl = RateController(SILENT_720P)
    now, _ = _audio_only_after_a_collapse(ctl, 0.0)
    audio_only_since = now
    back = None
    for _ in range(40):
        now += 0.1
        dec = ctl.update(LinkSample(now=now, send_rate_kbps=4.0, queue_delay_ms=0.0,
                                    offered_kbps=4.0))
        if not dec.drop_video:
            back = now
            break
    assert back is not None and back - audio_only_since <= 1.6
    assert dec.video_kbps >= SILENT_720P.floor_kbps // SILENT_720P.max_fps_divisor


def test_a_deep_cut_on_a_link_known_to_carry_a_picture_keeps_the_picture():
    """An emergency cut below the smallest picture while the capacity measured carries it
    (a queue from before the step is draining): fewer frames, not audio only."""
    ctl = RateController(SILENT_720P)
    now = 0.0
    for _ in range(10):
        now += 0.1
        ctl.update(LinkSample(now=now, send_rate_kbps=400.0, queue_delay_ms=2500.0,
                              busy_rate_kbps=400.0, offered_kbps=2500.0))
    for _ in range(20):
        now += 0.1
        dec = ctl.update(LinkSample(now=now, send_rate_kbps=400.0, queue_delay_ms=2500.0 + 10 * now,
                                    busy_rate_kbps=400.0, offered_kbps=300.0))
        assert not dec.drop_video, dec
    assert dec.fps_divisor == SILENT_720P.max_fps_divisor


def test_capacity_learned_while_busy_is_kept_through_a_long_idle_stretch():
    """A silent still scene sends a few kbit/s and never queues: nothing re-measures the
    link, and nothing should make the controller forget what it carried."""
    ctl = RateController(SILENT_720P)
    now = 0.0
    for _ in range(10):
        now += 0.1
        ctl.update(LinkSample(now=now, send_rate_kbps=400.0, queue_delay_ms=150.0,
                              busy_rate_kbps=400.0, offered_kbps=380.0))
    for _ in range(600):                        # a minute of near silence
        now += 0.1
        dec = ctl.update(LinkSample(now=now, send_rate_kbps=6.0, queue_delay_ms=0.0,
                                    offered_kbps=6.0))
        assert not dec.drop_video, dec
    assert ctl.capacity_kbps is not None and ctl.capacity_kbps >= 0.9 * 400
    assert dec.video_kbps >= 0.5 * (400 / 1.06 - SILENT_AUDIO_BUDGET)
