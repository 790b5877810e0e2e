"""Print RFC 8868 style figures for the controller and the fixed-bitrate baseline.

    PYTHONPATH=. python -m tests.support.linksim_report
"""

from __future__ import annotations

from broadcaster.ratecontrol.controller import RateControlConfig, RateController
from tests.support.linksim import (
    cuts,
    oscillations,
    peak_delay,
    settle_time,
    simulate,
    steps,
    time_to_fraction,
    utilisation,
)

CFG = RateControlConfig(floor_kbps=300, ceiling_kbps=4000, start_kbps=2500)
SCHEDULE = steps((0, 3000), (60, 1000), (120, 500), (180, 3000), (240, 1000), (300, 3000))
DOWN = [(60, 120, "3->1"), (120, 180, "1->0.5"), (240, 300, "3->1")]
UP = [(180, 240, "0.5->3"), (300, 360, "1->3")]
STEADY = [(20, 60, 3000), (80, 120, 1000), (140, 180, 500), (200, 240, 3000)]


def main() -> None:
    runs = {"controller": simulate(SCHEDULE, 360, RateController(CFG))}
    for fixed in (2500, 800):
        runs[f"fixed {fixed}k"] = simulate(SCHEDULE, 360, None, fixed_video_kbps=fixed, config=CFG)
    for name, tr in runs.items():
        print(f"== {name} (frames dropped {tr.frames_dropped})")
        for a, b, label in DOWN:
            print(f"  step {label:7s} at {a:3d}s: delay<200ms after {settle_time(tr, a, b, burst_s=0.25):6.2f}s "
                  f"(counting keyframe bursts: {settle_time(tr, a, b):6.2f}s), "
                  f"peak {peak_delay(tr, a, b):8.0f} ms")
        for a, b, label in UP:
            print(f"  step {label:7s} at {a:3d}s: 90% of capacity after {time_to_fraction(tr, a, b):6.2f}s")
        for a, b, cap in STEADY:
            m = (b - a) / 60
            print(f"  steady {cap:4d}k {a:3d}-{b:3d}s: utilisation {utilisation(tr, a, b):5.2f}, "
                  f"oscillations/min {oscillations(tr, a, b) / m:4.1f}, cuts/min {cuts(tr, a, b) / m:4.1f}, "
                  f"peak delay {peak_delay(tr, a, b):6.0f} ms")


if __name__ == "__main__":
    main()
