"""Blinks between lines: natural gaps, a pure function of time, and bounded memory over days."""

import tracemalloc

import numpy as np

from broadcaster.avatar.idle_motion import BlinkSchedule

FPS = 25


def _blink_onsets(schedule: BlinkSchedule, seconds: float) -> np.ndarray:
    t = np.arange(0, seconds, 1 / FPS)
    closed = np.array([schedule.value(x) > 0.5 for x in t])
    return t[1:][closed[1:] & ~closed[:-1]]


def test_blinks_come_at_natural_gaps_and_depend_only_on_time():
    onsets = _blink_onsets(BlinkSchedule(seed=3), 600)
    gaps = np.diff(onsets)
    assert 2.5 < gaps.mean() < 4.5
    assert gaps.min() >= 0.3 and np.percentile(gaps, 95) <= 6.1 and gaps.max() <= 12.1
    # any moment renders the same from a fresh schedule, whatever was asked before
    later, fresh = BlinkSchedule(seed=3), BlinkSchedule(seed=3)
    for t in np.arange(0, 300, 0.04):
        later.value(t)
    assert all(later.value(t) == fresh.value(t) for t in np.arange(250, 300, 0.04))


def test_a_day_of_blinks_holds_no_more_memory_than_a_minute():
    schedule = BlinkSchedule(seed=1)
    schedule.value(0.0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for second in range(24 * 3600):
            schedule.value(float(second))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 20_000, f"{held} bytes held after a day of blinks"
