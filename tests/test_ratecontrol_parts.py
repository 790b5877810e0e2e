"""The rate controller's parts, each on its own with plain numbers (link kbps, seconds):
the queue/overuse detector, the capacity estimate, the probe state machine, cut sizing, the
frame-rate divisor, the headroom and the measured overhead."""

from __future__ import annotations

import math

import pytest

from broadcaster.ratecontrol.capacity import CapacityEstimate
from broadcaster.ratecontrol.cut import cut_due, size_cut
from broadcaster.ratecontrol.frame_rate import FrameRate
from broadcaster.ratecontrol.headroom import Headroom
from broadcaster.ratecontrol.overhead import WireOverhead
from broadcaster.ratecontrol.overuse import QueueDetector, QueueReading
from broadcaster.ratecontrol.probe import Probe, ProbeNext, ProbePhase, ProbeVerdict
from broadcaster.ratecontrol.tuning import RateControlConfig

CFG = RateControlConfig(floor_kbps=300, ceiling_kbps=4000, start_kbps=2500)


def _feed(detector: QueueDetector, delays, start=0.0, tick=0.1, dropped=0) -> QueueReading:
    reading = None
    for i, d in enumerate(delays):
        reading = detector.observe(start + i * tick, d, dropped)
    return reading


def _queue(delay=0.0, standing=None, growing=False, slope=0.0, overuse=False) -> QueueReading:
    standing = delay if standing is None else standing
    return QueueReading(delay_ms=delay, standing_ms=standing, growing=growing, draining=False,
                        slope_ms_per_s=slope, overuse=overuse,
                        room=standing < CFG.low_delay_ms)


# -- queue/overuse detector -----------------------------------------------------------------
def test_a_keyframes_jump_and_fall_is_no_overuse():
    q = _feed(QueueDetector(CFG), [0, 0, 0, 250, 120])
    assert not q.growing and not q.overuse
    # a big queue that falls fast drains by itself: no overuse though it stood over high
    q = _feed(QueueDetector(CFG), [400, 300, 200, 150])
    assert q.standing_ms > CFG.high_delay_ms and q.draining and not q.overuse


def test_a_queue_that_climbs_tick_after_tick_is_overuse_and_its_slope_is_measured():
    q = _feed(QueueDetector(CFG), [0, 40, 80, 120, 160])
    assert q.growing and q.overuse and not q.room
    assert q.slope_ms_per_s == pytest.approx(400.0)      # 40 ms per 0.1 s tick


def test_a_queue_that_stands_over_high_delay_is_overuse_one_below_low_delay_is_room():
    standing = _feed(QueueDetector(CFG), [130, 125, 135, 130, 128, 131])
    assert standing.overuse and not standing.growing
    short = _feed(QueueDetector(CFG), [10, 30, 5, 20])
    assert short.room and not short.overuse


def test_sender_drops_are_overuse_whatever_the_queue():
    assert _feed(QueueDetector(CFG), [0, 0, 0], dropped=3).overuse


def test_the_detector_forgets_delays_older_than_a_second():
    det = QueueDetector(CFG)
    _feed(det, [500] * 5)
    q = det.observe(5.0, 0.0)                            # long after: only this tick counts
    assert q.standing_ms == 0.0 and not q.growing and q.slope_ms_per_s == 0.0


# -- capacity estimate ---------------------------------------------------------------------
def test_the_first_busy_rate_is_the_capacity_and_a_narrowing_is_believed_fast():
    cap = CapacityEstimate(CFG)
    assert cap.kbps is None and not cap.carries(100.0)
    assert not cap.observe_busy(1.0, 3000.0)
    assert cap.kbps == 3000.0 and cap.age(1.5) == pytest.approx(0.5)
    cap.observe_busy(1.5, 2000.0)                       # within a second: smoothed, 0.7
    assert cap.kbps == pytest.approx(3000.0 - 0.7 * 1000.0)
    cap.observe_busy(3.0, 2000.0)                       # a second later: replaced
    assert cap.kbps == 2000.0


def test_a_widening_busy_rate_is_confirmed_slowly_and_a_far_lower_one_is_a_new_link():
    cap = CapacityEstimate(CFG)
    cap.observe_busy(0.0, 1000.0)
    cap.observe_busy(0.1, 2000.0)
    assert cap.kbps == pytest.approx(1000.0 + CFG.capacity_gain * 1000.0)
    assert cap.observe_busy(0.2, 0.5 * cap.kbps)         # under 3/4: a different link


def test_a_busy_run_from_slow_start_is_no_measurement():
    assert CapacityEstimate.busy_reading(400.0, 1000.0) is None
    assert CapacityEstimate.busy_reading(900.0, 1000.0) == 900.0
    assert CapacityEstimate.busy_reading(None, 1000.0) is None


def test_capacity_is_kept_through_an_idle_hour():
    cap = CapacityEstimate(CFG)
    cap.observe_busy(0.0, 400.0)
    for i in range(36_000):                              # ticks with nothing measurable
        cap.observe_busy(0.1 * i, None)
    assert cap.kbps == 400.0 and cap.carries(400.0) and cap.age(3600.0) == pytest.approx(3600.0)


def test_probes_and_cuts_move_the_capacity_within_bounds():
    cap = CapacityEstimate(CFG)
    cap.observe_busy(0.0, 3000.0)
    cap.probe_carried(1.0, 2500.0)                       # proves less than known: no change
    assert cap.kbps == 3000.0 and cap.age(1.0) == 1.0
    cap.probe_carried(1.0, 3300.0)
    assert cap.kbps == 3300.0 and cap.age(1.0) == 0.0
    cap.probe_filled(None, 1000.0)                       # no busy run: at most down to 0.8x
    assert cap.kbps == pytest.approx(0.8 * 3300.0)
    cap.probe_filled(2900.0, 1000.0)                     # a busy run: that is the capacity
    assert cap.kbps == 2900.0
    cap.cut_to(100.0, 200.0)                             # a cut at most halves it
    assert cap.kbps == 1450.0


# -- probe state machine -------------------------------------------------------------------
def test_a_probe_pads_to_its_gain_over_the_capacity_within_its_limits():
    p = Probe(CFG)
    assert p.phase is ProbePhase.IDLE and p.padding(1000.0) == 0.0
    target = p.start(10.0, capacity=3000.0, target=2760.0, expected=2760.0, offered=2622.0,
                     limit=5000.0, smallest_picture=None)
    assert target == 2760.0 and p.phase is ProbePhase.PROBING and p.base is None
    assert p.level == pytest.approx(3000.0 * 1.1)          # the first gain
    assert p.yield_ == pytest.approx(0.95)                 # the encoder sends 95 % of its target
    assert p.padding(2760.0) == pytest.approx(3300.0 - 2760.0 * 0.95)
    p.start(10.0, capacity=3000.0, target=2760.0, expected=1000.0, offered=None,
            limit=5000.0, smallest_picture=None)
    assert p.level == pytest.approx(1800.0)                # under 1.8x what is sent
    p.start(10.0, capacity=3000.0, target=2760.0, expected=2760.0, offered=None,
            limit=3100.0, smallest_picture=None)
    assert p.level == 3100.0                               # never past the ceiling's plateau


def test_with_audio_only_the_smallest_picture_is_the_probe():
    p = Probe(CFG)
    target = p.start(0.0, capacity=None, target=140.0, expected=140.0, offered=4.0,
                     limit=5000.0, smallest_picture=215.0)
    assert target == p.level == 215.0 and p.base == 140.0
    assert p.refused(0.2, carried_kbps=100.0) == 140.0      # refused: back to the audio


def test_a_probe_is_judged_by_its_queue_its_busy_rate_and_its_dwell():
    p = Probe(CFG)
    p.start(0.0, capacity=3000.0, target=2760.0, expected=2760.0, offered=None,
            limit=5000.0, smallest_picture=None)
    assert p.verdict(0.3, _queue(30.0), None) is ProbeVerdict.PENDING
    assert p.verdict(CFG.probe_dwell_s, _queue(30.0), None) is ProbeVerdict.CARRIED
    assert p.verdict(0.3, _queue(90.0, standing=80.0), None) is ProbeVerdict.REFUSED
    assert p.verdict(0.3, _queue(150.0, standing=10.0), None) is ProbeVerdict.REFUSED
    assert p.verdict(0.3, _queue(0.0), 0.9 * p.level) is ProbeVerdict.REFUSED   # saturated
    assert p.verdict(0.3, _queue(0.0), 0.99 * p.level) is ProbeVerdict.PENDING


def test_a_refused_probe_waits_twice_as_long_and_its_queue_settles_without_a_cut():
    p = Probe(CFG)
    p.start(0.0, capacity=3000.0, target=2760.0, expected=2760.0, offered=None,
            limit=5000.0, smallest_picture=None)
    assert p.refused(0.5, carried_kbps=3000.0) is None
    assert p.phase is ProbePhase.PLATEAU and p.wait == 2 * CFG.probe_wait_s
    assert p.gain == CFG.probe_gain
    assert p.settling(1.0, drain_kbps=2900.0)
    assert not p.settling(1.0, drain_kbps=0.5 * 3000.0)     # the link narrowed under it
    assert not p.settling(0.5 + CFG.probe_settle_s, drain_kbps=3000.0)
    for i in range(5):
        p.refused(1.0 + i, carried_kbps=3000.0)
    assert p.wait == CFG.probe_wait_max_s
    assert not p.due(p.since + 1.0, p.wait) and p.due(p.since + p.wait, p.wait)


def test_a_carried_probe_that_reached_its_level_is_followed_by_a_bigger_one():
    p = Probe(CFG)
    p.start(0.0, capacity=3000.0, target=2760.0, expected=2760.0, offered=None,
            limit=5000.0, smallest_picture=None)
    gain = p.gain
    assert p.carried(0.8, sent=p.level, known=3000.0, room=True, limit=5000.0) is ProbeNext.BIGGER
    assert p.gain == pytest.approx(gain * CFG.probe_chain)
    assert p.phase is ProbePhase.PLATEAU and p.wait == CFG.probe_wait_s


def test_a_carried_probe_that_fell_short_proves_only_what_it_sent():
    p = Probe(CFG)
    p.start(0.0, capacity=3000.0, target=2760.0, expected=2760.0, offered=None,
            limit=5000.0, smallest_picture=None)
    p.carried(0.8, sent=p.level, known=3000.0, room=True, limit=5000.0)
    p.start(0.8, capacity=3000.0, target=2760.0, expected=2760.0, offered=None,
            limit=5000.0, smallest_picture=None)
    # the bigger probe sent a little over the capacity, far short of its level: it proves
    # no room above what was sent, and the next one starts from the first gain again
    assert p.carried(1.6, sent=3050.0, known=3000.0, room=True, limit=5000.0) is ProbeNext.HOLD
    assert p.gain == CFG.probe_gain
    # one that raised the capacity by more than 3 %: the same probe again from the new figure
    p.start(2.0, capacity=3000.0, target=2760.0, expected=2760.0, offered=None,
            limit=5000.0, smallest_picture=None)
    p.carried(2.8, sent=p.level, known=3000.0, room=True, limit=5000.0)
    p.start(2.8, capacity=3000.0, target=2760.0, expected=2760.0, offered=None,
            limit=5000.0, smallest_picture=None)
    gain = p.gain
    assert p.carried(3.6, sent=3150.0, known=3000.0, room=True, limit=5000.0) is ProbeNext.AGAIN
    assert p.gain == gain
    # never even sent the capacity known: the next (after the wait) asks for more
    p.start(4.0, capacity=3000.0, target=2760.0, expected=2760.0, offered=None,
            limit=5000.0, smallest_picture=None)
    gain = p.gain
    assert p.carried(4.8, sent=2700.0, known=3000.0, room=True, limit=5000.0) is ProbeNext.HOLD
    assert p.gain == pytest.approx(min(CFG.probe_gain_max, gain * CFG.probe_chain))
    # at the ceiling there is nothing to probe for
    p.start(6.0, capacity=3000.0, target=2760.0, expected=2760.0, offered=None,
            limit=5000.0, smallest_picture=None)
    assert p.carried(6.8, sent=p.level, known=3000.0, room=False, limit=5000.0) is ProbeNext.HOLD


def test_a_cut_sends_the_probe_back_to_idle_with_the_first_gain():
    p = Probe(CFG)
    p.start(0.0, capacity=3000.0, target=2760.0, expected=2760.0, offered=None,
            limit=5000.0, smallest_picture=None)
    p.carried(0.8, sent=p.level, known=3000.0, room=True, limit=5000.0)
    p.cut(1.0)
    assert p.phase is ProbePhase.IDLE and p.since == 1.0 and p.gain == CFG.probe_gain
    assert not p.probing and p.padding(2000.0) == 0.0


# -- cut sizing ----------------------------------------------------------------------------
def test_a_cut_is_due_after_the_encoders_holdoff():
    growing, standing = _queue(200.0, growing=True), _queue(200.0)
    assert not cut_due(CFG, 1.0, 1.0 - 0.5 * CFG.cut_holdoff_s, growing, 0)
    assert cut_due(CFG, 1.0, 1.0 - CFG.cut_holdoff_s, growing, 0)
    assert not cut_due(CFG, 1.0, 1.0 - CFG.cut_holdoff_s, standing, 0)
    assert cut_due(CFG, 1.0, 1.0 - CFG.cut_holdoff_s, standing, 2)
    assert cut_due(CFG, 1.0, 1.0 - 2 * CFG.cut_holdoff_s, standing, 0)
    assert cut_due(CFG, 1.0, -math.inf, standing, 0)


def test_a_standing_queue_is_cut_to_the_capacity_less_what_drains_it():
    cut = size_cut(CFG, target=3000.0, expected=3000.0, queue=_queue(190.0), drain=2000.0,
                   recent=None, fresh_capacity=2000.0, lossy=False)
    # 150 ms over low_delay_ms drained in drain_time_s: 10 % below the capacity
    assert cut.reference == 2000.0
    assert cut.target == pytest.approx(2000.0 * (1 - 0.15 / CFG.drain_time_s))
    # past emergency_delay_ms the queue is drained faster
    fast = size_cut(CFG, target=3000.0, expected=3000.0, queue=_queue(340.0), drain=2000.0,
                    recent=None, fresh_capacity=2000.0, lossy=False)
    assert fast.target == pytest.approx(2000.0 * (1 - 0.3 / CFG.fast_drain_time_s))


def test_a_growing_queue_is_cut_by_its_growth_and_the_recent_drain():
    q = _queue(200.0, growing=True, slope=1000.0)            # +1 s of delay per second
    cut = size_cut(CFG, target=3000.0, expected=3000.0, queue=q, drain=2500.0, recent=1200.0,
                   fresh_capacity=None, lossy=False)
    # the recent drain (never under half the window's) is below what the slope tells (1500)
    assert cut.reference == 0.5 * 2500.0
    assert 0.5 * 1250.0 <= cut.target < 1250.0


def test_a_standing_backlog_under_losses_is_one_small_step():
    cut = size_cut(CFG, target=3000.0, expected=3000.0, queue=_queue(900.0), drain=50.0,
                   recent=None, fresh_capacity=None, lossy=True)
    assert cut.target == pytest.approx(3000.0 * CFG.min_cut)


def test_every_cut_takes_at_least_min_cut():
    cut = size_cut(CFG, target=1000.0, expected=1000.0, queue=_queue(130.0), drain=5000.0,
                   recent=None, fresh_capacity=5000.0, lossy=False)
    assert cut.target == pytest.approx(1000.0 * CFG.min_cut)


# -- frame-rate divisor --------------------------------------------------------------------
def test_a_queue_growing_past_emergency_skips_enough_frames():
    fr = FrameRate(CFG)
    assert fr.emergency(_queue(400.0, growing=True), expected=3000.0, fresh_capacity=1000.0)
    assert fr.emergency_divisor == 3
    assert fr.emergency(_queue(400.0, growing=True), expected=3000.0, fresh_capacity=None)
    assert fr.emergency_divisor == 3                          # (never less while it lasts)
    assert fr.emergency(_queue(400.0, growing=True), expected=9000.0, fresh_capacity=1000.0)
    assert fr.emergency_divisor == CFG.max_fps_divisor
    assert not fr.emergency(_queue(200.0), expected=3000.0, fresh_capacity=None)
    assert fr.emergency_divisor == CFG.max_fps_divisor        # between high and emergency: kept
    assert not fr.emergency(_queue(50.0), expected=3000.0, fresh_capacity=None)
    assert fr.emergency_divisor == 1


def test_below_the_floor_fewer_frames_each_at_floor_quality_with_hysteresis():
    fr = FrameRate(CFG)
    at_floor = fr.pictures(300.0, carries_smallest=True)
    assert (at_floor.fps_divisor, at_floor.drop_video, at_floor.below_floor) == (1, False, False)
    half = fr.pictures(150.0, carries_smallest=True)
    assert (half.fps_divisor, half.drop_video, half.below_floor) == (2, False, True)
    # back at 0.88 of the floor: still below (whole frame rate only from 0.925)
    assert fr.pictures(0.88 * 300.0, carries_smallest=True).below_floor
    assert not fr.pictures(0.93 * 300.0, carries_smallest=True).below_floor
    assert fr.smallest_video_kbps == 75.0


def test_audio_only_only_where_the_capacity_cannot_carry_the_smallest_picture():
    fr = FrameRate(CFG)
    kept = fr.pictures(40.0, carries_smallest=True)
    assert kept.fps_divisor == CFG.max_fps_divisor and not kept.drop_video
    assert fr.pictures(40.0, carries_smallest=False).drop_video
    assert not fr.pictures(80.0, carries_smallest=False).drop_video   # the smallest fits


# -- headroom and overhead -----------------------------------------------------------------
def test_cuts_at_the_plateau_take_headroom_and_quiet_time_gives_it_back():
    h = Headroom(CFG)
    h.cut_at(0.5 * 3000.0, 3000.0)                           # a cut while recovering: no change
    assert h.margin == CFG.capacity_margin
    for _ in range(10):
        h.cut_at(h.level(3000.0), 3000.0)
    assert h.margin == CFG.min_capacity_margin
    h.recover(now=10.0, last_cut=0.0)                          # not quiet long enough
    assert h.margin == CFG.min_capacity_margin
    h.recover(now=25.0, last_cut=0.0)
    assert h.margin == pytest.approx(CFG.min_capacity_margin + 0.01)
    h.recover(now=30.0, last_cut=0.0)                          # once per margin_recover_s
    assert h.margin == pytest.approx(CFG.min_capacity_margin + 0.01)
    h.reset()
    assert h.margin == CFG.capacity_margin


def test_the_overhead_follows_the_measured_wire_factor_and_ignores_glitches():
    o = WireOverhead(0.06)
    for _ in range(60):
        o.observe(1.3)
    assert o.value == pytest.approx(0.3, abs=0.001)
    o.observe(2.5)                                             # a glitch
    o.observe(None)
    assert o.value == pytest.approx(0.3, abs=0.001)
    for _ in range(60):
        o.observe(0.95)                                        # FLV's headers once: no overhead
    assert o.value == pytest.approx(0.0, abs=0.001)
