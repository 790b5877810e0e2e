"""BurstCompensator with plain numbers: keyframes are discounted, a narrower link is not."""

import pytest

from broadcaster.ratecontrol.burst import BurstCompensator

TICK = 0.05
RATE = 250_000          # bytes/s written on average (2 Mbit/s)


def feed(bc: BurstCompensator, start: float, seconds: float, rate: float) -> float:
    now = start
    for n in range(int(seconds / TICK)):
        now = start + (n + 1) * TICK
        bc.written(now, int(rate * TICK))
    return now


def test_steady_writes_explain_nothing():
    bc = BurstCompensator()
    now = feed(bc, 0.0, 3.0, RATE)
    assert bc.residual_ms(now, 375_000) == 0.0
    assert bc.average_bps(now) == pytest.approx(RATE, rel=0.05)


def test_a_keyframe_is_discounted_until_spare_capacity_drained_it():
    bc = BurstCompensator()
    now = feed(bc, 0.0, 3.0, RATE)
    bc.written(now + TICK, int(RATE * TICK * 5))          # a 5x frame: 4 ticks of excess
    excess = RATE * TICK * 5 - 2.0 * RATE * TICK
    drain = 375_000                                       # 3 Mbit/s link, 1 Mbit/s spare
    first = bc.residual_ms(now + TICK, drain)
    assert first == pytest.approx(excess / drain * 1000, rel=0.05)
    later = bc.residual_ms(now + TICK + 0.1, drain)
    assert later == pytest.approx((excess - (drain - RATE) * 0.1) / drain * 1000, rel=0.1)
    assert bc.residual_ms(now + 2.0, drain) == 0.0


def test_writing_more_steadily_is_not_a_burst():
    bc = BurstCompensator()
    now = feed(bc, 0.0, 3.0, RATE)
    now = feed(bc, now, 1.0, RATE * 1.3)                  # the encoder overshoots for a second
    assert bc.residual_ms(now, 250_000) == 0.0


def test_a_ramping_bitrate_is_not_a_burst():
    # a probe ramping at +70 %/s: each tick writes a little more than the last, never a jump
    bc = BurstCompensator()
    now = feed(bc, 0.0, 3.0, RATE)
    rate = RATE
    for _ in range(int(2.0 / TICK)):
        rate *= 1.7 ** TICK
        now += TICK
        bc.written(now, int(rate * TICK))
    assert rate > 2.5 * RATE
    assert bc.residual_ms(now, RATE) == 0.0


def test_a_burst_on_a_saturated_link_explains_the_queue_for_a_second_at_most():
    # no spare capacity: the excess would drain at 10 % of the link and seem to linger for
    # 10 s; the VBV has made up for a keyframe within its buffer, so after max_age_s the
    # queue is the link's
    bc = BurstCompensator()
    now = feed(bc, 0.0, 3.0, RATE)
    now += TICK
    bc.written(now, int(RATE * TICK * 5))
    now = feed(bc, now, 0.5, RATE)
    assert bc.residual_ms(now, RATE) > 80.0           # (most of 150 ms of excess is left)
    now = feed(bc, now, 0.7, RATE)
    assert bc.residual_ms(now, RATE) == 0.0


def test_a_quick_recovery_after_a_deep_cut_is_not_a_run_of_keyframes():
    # after audio only, the bitrate climbs x4 within a second: the median of the last
    # 0.6 s follows it, so the climb is not counted as bursts
    bc = BurstCompensator()
    now = feed(bc, 0.0, 2.0, RATE / 8)
    rate = RATE / 8
    for _ in range(int(1.0 / TICK)):
        rate = min(RATE / 2, rate * 1.12)
        now += TICK
        bc.written(now, int(rate * TICK))
    assert rate == RATE / 2
    assert bc.residual_ms(now, RATE / 2) < 20.0


def test_a_queue_that_outlasts_a_burst_is_not_discounted_however_many_bursts_come():
    # a saturated link with a keyframe every second: each one's discount would overlap the
    # next and hide a queue that never falls; after max_age_s of standing it counts in full
    bc = BurstCompensator()
    now = feed(bc, 0.0, 3.0, RATE)
    seen = []
    for second in range(3):
        now += TICK
        bc.written(now, int(RATE * TICK * 5))
        for _ in range(int(1.0 / TICK) - 1):
            now += TICK
            bc.written(now, int(RATE * TICK))
            seen.append((now, bc.residual_ms(now, RATE, raw_ms=400.0)))
    assert seen[0][1] > 0                              # a fresh burst explains some of it
    assert all(r == 0.0 for t, r in seen if t > 3.0 + 1.2), seen


def test_a_keyframe_queue_that_falls_back_is_still_discounted():
    bc = BurstCompensator()
    now = feed(bc, 0.0, 3.0, RATE)
    for _ in range(3):
        now += TICK
        bc.written(now, int(RATE * TICK * 5))
        assert bc.residual_ms(now, 2 * RATE, raw_ms=120.0) > 0
        for _ in range(int(1.0 / TICK) - 1):
            now += TICK
            bc.written(now, int(RATE * TICK))
            bc.residual_ms(now, 2 * RATE, raw_ms=10.0)     # it drained: the queue fell back
