"""Run inside `unshare -n`: what SrtLinkMeter reads while a real libsrt sender overloads a
tc tbf link, then backs off. Prints one JSON line per 0.1 s tick.

    python -m tests.support.programs.netns_srt_meter LINK_KBPS OFFER_KBPS SECONDS BACKOFF_AT

The sender writes OFFER_KBPS of 1316-byte messages until BACKOFF_AT, then 70 % of it: the
queue in front of the link grows, then drains, as it does around a rate cut.
"""

from __future__ import annotations

import json
import signal
import sys
import time

from broadcaster.ratecontrol.srt_meter import SrtLinkMeter
from broadcaster.transport.srt import open_srt
from tests.support.processes import stop
from tools import step_test  # the step test's own shaping: only the media direction

PORT = step_test.SRT_PORT


def main() -> None:
    link, offer, seconds, backoff_at = (int(sys.argv[1]), float(sys.argv[2]),
                                        float(sys.argv[3]), float(sys.argv[4]))
    step_test.sh("ip link set lo up")
    step_test.shape(link, first=True)
    rx = step_test.start_srt_listener(PORT)
    try:
        time.sleep(0.5)
        sink = open_srt(f"srt://127.0.0.1:{PORT}?latency_ms=1000", connect_timeout_s=3)
        meter = SrtLinkMeter()
        message = bytes(1316)
        start = time.monotonic()
        owed = 0.0
        last = start
        next_tick = start + 0.1
        while (now := time.monotonic()) - start < seconds:
            rate = offer if now - start < backoff_at else 0.7 * offer
            owed += rate * 1000 / 8 * (now - last)
            last = now
            while owed >= len(message):
                sink.write(message)
                owed -= len(message)
            if now >= next_tick:
                next_tick += 0.1
                s = meter.sample(now, sink.stats(), sink.bytes_written, sink.bytes_handed)
                if s is not None:
                    print(json.dumps({"t": round(now - start, 2), "send": s.send_rate_kbps,
                                      "busy": s.busy_rate_kbps, "queue": s.queue_delay_ms,
                                      "lost": s.lost_packets, "dropped": s.dropped_packets}),
                          flush=True)
            time.sleep(0.004)
        sink.close()
    finally:
        stop(rx, signal.SIGKILL)


if __name__ == "__main__":
    main()
