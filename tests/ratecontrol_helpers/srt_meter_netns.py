"""Run inside `unshare -n`: what SrtLinkMeter reads while a real libsrt sender overloads a
tc tbf link, then backs off. Prints one JSON line per 0.1 s tick.

    python -m tests.ratecontrol_helpers.srt_meter_netns LINK_KBPS OFFER_KBPS SECONDS BACKOFF_AT

The sender writes OFFER_KBPS of 1316-byte messages until BACKOFF_AT, then 70 % of it: the
queue in front of the link grows, then drains, as it does around a rate cut.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from broadcaster.transport.srt import SrtLinkMeter, open_srt

PORT = 9710


def sh(cmd: str) -> None:
    subprocess.run(cmd, shell=True, check=True)


def main() -> None:
    link, offer, seconds, backoff_at = (int(sys.argv[1]), float(sys.argv[2]),
                                        float(sys.argv[3]), float(sys.argv[4]))
    sh("ip link set lo up")
    # only the media direction is shaped (as in tools/step_test.py)
    sh("tc qdisc add dev lo root handle 1: htb default 20 r2q 100000")
    sh("tc class add dev lo parent 1: classid 1:10 htb rate 10gbit")
    sh("tc class add dev lo parent 1: classid 1:20 htb rate 10gbit")
    sh(f"tc filter add dev lo parent 1: protocol ip u32 match ip dport {PORT} 0xffff flowid 1:10")
    sh(f"tc qdisc add dev lo parent 1:10 handle 10: tbf rate {link}kbit burst 16kb latency 300ms")
    rx = subprocess.Popen(["srt-live-transmit", "-q", f"srt://:{PORT}?mode=listener&latency=1000",
                           "file://con"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
        rx.kill()
        rx.wait()


if __name__ == "__main__":
    main()
