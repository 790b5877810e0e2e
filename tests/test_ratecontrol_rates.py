"""WindowedCounters (ratecontrol/rates.py): the one sliding window the meters and the link
monitor read their rates from."""

from broadcaster.ratecontrol.rates import WindowedCounters


def test_the_window_keeps_its_span_and_returns_its_start():
    w = WindowedCounters(0.5)
    starts = [w.add(t / 10, t * 1000) for t in range(10)]
    assert starts[-1] == (0.4, 4000)           # 0.4 .. 0.9: the last 0.5 s
    t0, b0 = starts[-1]
    assert (w.latest[1] - b0) * 8 / (w.latest[0] - t0) / 1000 == 80.0


def test_a_slow_tick_still_has_a_reading_to_measure_from():
    w = WindowedCounters(0.5)
    w.add(0.0, 0)
    assert w.add(3.0, 1000) == (0.0, 0)


def test_several_counters_slide_together():
    w = WindowedCounters(1.0)
    for t in range(5):
        start = w.add(float(t), t * 100, t * 90)
    assert start == (3.0, 300, 270) and w.latest == (4.0, 400, 360)


def test_the_recent_rate_reads_the_last_part_only():
    w = WindowedCounters(0.5)
    # 100 kB/s (800 kbit/s), then 25 kB/s for the last 0.25 s
    for t, b in [(0.0, 0), (0.125, 12_500), (0.25, 25_000), (0.375, 37_500), (0.5, 40_625),
                 (0.625, 43_750)]:
        w.add(t, b)
    assert w.recent_kbps(0.625, span_s=0.25) == 200.0
    assert WindowedCounters(0.5).recent_kbps(1.0) is None
