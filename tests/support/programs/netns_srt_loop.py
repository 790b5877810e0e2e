"""Closed loop over real SRT through a real bottleneck; run INSIDE a fresh network namespace.

    unshare -n python -m tests.support.programs.netns_srt_loop [--fixed KBPS] SECONDS STEP_AT

Shapes lo with `tc tbf` (3 Mbit/s, then 1 Mbit/s at STEP_AT), pushes synthetic stream bytes
(I-frame-like burst every 2 s) through SrtSink to srt-live-transmit, feeds SrtLinkMeter ->
RateController (or a fixed rate) every 50 ms and prints the trace as JSON lines.
"""

from __future__ import annotations

import json
import sys
import time

from broadcaster.ratecontrol.controller import RateControlConfig, RateController
from broadcaster.ratecontrol.srt_meter import SrtLinkMeter
from tests.support.processes import stop
from tests.support.servers.srt import connect_retry
from tools.step_test import SRT_PORT as PORT
from tools.step_test import sh, start_srt_listener

TICK = 0.05


def shape(kbit: int, first: bool = False) -> None:
    """The whole of lo (both directions) through one tbf."""
    verb = "add" if first else "change"
    sh(f"tc qdisc {verb} dev lo root tbf rate {kbit}kbit burst 16kb latency 300ms")


def main(argv: list[str]) -> None:
    fixed = None
    if argv[0] == "--fixed":
        fixed = float(argv[1])
        argv = argv[2:]
    seconds, step_at = float(argv[0]), float(argv[1])
    sh("ip link set lo up && ip link set lo mtu 1500")
    shape(3000, first=True)
    rx = start_srt_listener(PORT)
    try:
        sink = connect_retry(f"srt://127.0.0.1:{PORT}?latency_ms=1000")
        cfg = RateControlConfig(floor_kbps=200, ceiling_kbps=4000, start_kbps=2500,
                                audio_kbps=128, overhead=0.0)
        ctl = None if fixed is not None else RateController(cfg)
        kbps = fixed if fixed is not None else cfg.link_kbps(cfg.start_kbps)
        meter = SrtLinkMeter()
        t0 = time.monotonic()
        n, capacity = 0, 3000
        while time.monotonic() - t0 < seconds:
            now = time.monotonic()
            if capacity == 3000 and now - t0 >= step_at:
                shape(1000)
                capacity = 1000
            burst = 4.0 if n % 40 == 0 else 36 / 39
            sink.write(bytes(int(kbps * 1000 / 8 * TICK * burst)))
            st = sink.stats()
            sample = meter.sample(now, st, sink.bytes_written, sink.bytes_handed)
            if sample is not None:
                reason = "fixed"
                if ctl is not None:
                    decision = ctl.update(sample)
                    kbps = cfg.link_kbps(decision.video_kbps) + decision.padding_kbps
                    reason = decision.reason
                print(json.dumps(dict(t=round(now - t0, 3), reason=reason, capacity=capacity, kbps=round(kbps),
                                      delay=round(sample.queue_delay_ms), snd_buf_ms=st.snd_buf_ms,
                                      rtt=round(st.rtt_ms, 1), drain=round(sample.send_rate_kbps),
                                      busy=sample.busy_rate_kbps and round(sample.busy_rate_kbps),
                                      drops=st.pkt_snd_drop, retrans=st.pkt_retrans,
                                      estimate=ctl and ctl.capacity_kbps and round(ctl.capacity_kbps),
                                      padding=ctl and decision.padding_kbps)), flush=True)
            n += 1
            time.sleep(max(0.0, t0 + n * TICK - time.monotonic()))
        sink.close()
    finally:
        stop(rx, timeout=5)


if __name__ == "__main__":
    main(sys.argv[1:])
