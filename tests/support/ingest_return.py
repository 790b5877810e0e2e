"""How long a running broadcaster stays off air after its RTMP ingest comes back: stop the
real nginx-rtmp, wait until the broadcaster noticed, keep it down a while, start it again and
time from its port accepting to /healthz saying on air (the first packet reached it)."""

from __future__ import annotations

import time

from tests.support.broadcaster_proc import healthz
from tests.support.polling import wait_for
from tests.support.servers.nginx_rtmp import NginxRtmp


def on_air(control_port: int) -> bool:
    """/healthz says the broadcast is on air (its packets reach the ingest)."""
    status, body = healthz(control_port, timeout=1)
    return status == 200 and body["on_air"]


def seconds_back_on_air(nginx: NginxRtmp, control_port: int, down_s: float,
                        proc=None, timeout: float = 120.0) -> float:
    """One outage of down_s seconds; returns the delay from the ingest accepting again to on
    air (nginx.start() returns within 50 ms of its port accepting)."""
    wait_for(lambda: on_air(control_port), timeout, interval=0.1, what="on air", proc=proc)
    nginx.stop()
    wait_for(lambda: not on_air(control_port), 15, interval=0.05,
             what="the broadcaster to notice the ingest is gone", proc=proc)
    time.sleep(down_s)
    nginx.start()
    accepted = time.monotonic()
    wait_for(lambda: on_air(control_port), timeout, interval=0.02,
             what="on air again after the ingest returned", proc=proc)
    return time.monotonic() - accepted
