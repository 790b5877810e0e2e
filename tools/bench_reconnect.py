#!/usr/bin/env python3
"""Back on air after the ingest returns: the backoff alone vs. the port check while absent.

Starts a real nginx-rtmp and a real broadcaster (320x240@15) with the default backoff (2 s,
x1.5, jitter 0.2), stops nginx N times for --down seconds each (--up seconds on air between
outages: over 10 s, a session resets the backoff) and prints, per outage, the delay from
nginx's port accepting again to /healthz saying on air. The same run does it twice:
output.reconnect.probe_s 0 (the baseline: backoff only) and the default 0.5 s.

    .venv/bin/python tools/bench_reconnect.py [--outages 6] [--down 5] [--up 11]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.broadcaster_proc import start_broadcaster, write_config  # noqa: E402
from tests.support.ingest_return import seconds_back_on_air  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.processes import stop  # noqa: E402
from tests.support.servers.nginx_rtmp import NginxRtmp  # noqa: E402


def measure(workdir: Path, probe_s: float, outages: int, down_s: float, up_s: float) -> list[float]:
    nginx = NginxRtmp(workdir / "nginx", record=False)
    nginx.start()
    port = free_port()
    config = write_config(workdir / "config.yaml", control={"port": port},
                          output={"url": nginx.url("bench"), "reconnect": {"probe_s": probe_s}})
    proc = start_broadcaster("run", "-c", str(config), "--size", "320x240", "--fps", "15")
    try:
        delays = []
        for _ in range(outages):
            delays.append(seconds_back_on_air(nginx, port, down_s, proc=proc))
            time.sleep(up_s)
        return delays
    finally:
        stop(proc)
        nginx.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outages", type=int, default=6)
    parser.add_argument("--down", type=float, default=5.0, help="seconds the ingest stays down")
    parser.add_argument("--up", type=float, default=11.0, help="seconds on air between outages")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, probe_s in (("backoff only (probe_s 0)", 0.0), ("port check (probe_s 0.5)", 0.5)):
            workdir = Path(tmp) / str(probe_s)
            workdir.mkdir()
            delays = measure(workdir, probe_s, args.outages, args.down, args.up)
            results[name] = delays
            print(f"{name}: " + ", ".join(f"{d:.2f}" for d in delays)
                  + f" s; median {statistics.median(delays):.2f} s, max {max(delays):.2f} s",
                  flush=True)
    base, probed = results.values()
    print(f"median ratio (port check / backoff only): "
          f"{statistics.median(probed) / statistics.median(base):.2f}; "
          f"max ratio {max(probed) / max(base):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
