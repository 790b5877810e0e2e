"""One yardstick for rate control: what "settled", "peak delay", "oscillation" and "picture
freeze" mean, for the link simulator (linksim.py), tools/step_test.py and the netns tests.

Each takes plain sequences (times in seconds, oldest first) so the same definition reads a
simulated trace, a broadcaster's per-tick trace and a netns loop's JSON lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

SETTLED_MS = 200.0     # a queue under this is settled
BURST_S = 0.25         # an excursion shorter than this is a keyframe's own serialisation time
HIGH_SHARE, LOW_SHARE = 0.9, 0.7   # oscillation watermarks, shares of the capacity
RESPONSE_S = 5.0       # a step's response: whether it settled is judged within this much
                       # after it, and steady-state figures (oscillation, utilisation) start
                       # after it; a queue later on (a probe's, SRT's loss recovery) is the
                       # steady state's, seen in its peak delay


def settle_time(times: Sequence[float], delays: Sequence[float], step_at: float, until: float,
                limit_ms: float = SETTLED_MS, burst_s: float = 0.0) -> float:
    """Seconds after step_at until the queueing delay is under limit_ms for good, up to until
    (0.0: it never went over; inf: it still was at the end). Real links are judged within
    RESPONSE_S of the step (until = step_at + RESPONSE_S at most); the simulator's stretches
    have no loss recovery or probe queues of their own, and its tests pass whole stretches.

    burst_s > 0 ignores excursions shorter than that: the delay then counts as the minimum
    over the preceding burst_s.
    """
    window = [i for i, t in enumerate(times) if step_at <= t < until]
    last_bad = None
    for i in window:
        recent = [delays[j] for j in range(i, -1, -1) if times[i] - times[j] <= burst_s + 1e-9]
        if min(recent) >= limit_ms:
            last_bad = i
    if last_bad is None:
        return 0.0
    if last_bad == window[-1]:
        return math.inf
    return times[last_bad + 1] - step_at


def peak_delay(times: Sequence[float], delays: Sequence[float], a: float, b: float) -> float:
    """The largest queueing delay in [a, b)."""
    return max(d for t, d in zip(times, delays) if a <= t < b)


def oscillations(times: Sequence[float], link_shares: Sequence[float], a: float, b: float,
                 high: float = HIGH_SHARE, low: float = LOW_SHARE) -> int:
    """RFC 8868 style: swings of the encoder's link rate (as a share of the capacity) between
    a high and a low watermark in [a, b); each high->low or low->high crossing counts once."""
    state = None
    count = 0
    for t, share in zip(times, link_shares):
        if not a <= t < b:
            continue
        new = "high" if share >= high else "low" if share <= low else state
        if state is not None and new != state:
            count += 1
        state = new
    return count


def worst_freeze(picture_times: Sequence[float], a: float, b: float) -> float:
    """The longest time between two pictures in [a, b) (from a to the first one counts too),
    in seconds: what a viewer sees as a still picture."""
    times = sorted(t for t in picture_times if a <= t < b)
    if not times:
        return b - a
    return max([y - x for x, y in zip(times, times[1:])] + [times[0] - a])
