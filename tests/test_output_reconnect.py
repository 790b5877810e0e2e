"""Reconnecting to an RTMP ingest: back on air within a second of an absent ingest's return
(a cheap port check while backing off), but the full backoff for an ingest that answers and
refuses. The policy on its own, then the real broadcaster against a real nginx-rtmp."""

import time

from broadcaster.backoff import Backoff
from broadcaster.output.reconnect import IngestState, ReconnectPolicy
from tests.support.broadcaster_proc import (
    metrics,
    sample,
    start_broadcaster,
    write_config,
)
from tests.support.ingest_return import on_air, seconds_back_on_air
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import stop

KEY = "reconnect_key_31f0aa"


def _policy(probe_s: float = 0.5) -> ReconnectPolicy:
    return ReconnectPolicy(Backoff(initial_s=8.0, factor=1.5, max_s=60.0, jitter=0.0), probe_s)


def test_an_absent_ingest_is_checked_and_retried_as_soon_as_it_accepts():
    policy = _policy()
    assert policy.attempt_due(0.0)
    policy.attempt_started()
    policy.connected()
    assert policy.dropped(100.0) == 8.0 and policy.state == IngestState.DROPPED
    assert policy.probe_due(100.0)                       # at once: is the ingest gone?
    assert not policy.probed(100.0, accepted=False) and policy.state == IngestState.ABSENT
    assert not policy.probe_due(100.4) and policy.probe_due(100.5)
    assert not policy.probed(100.5, accepted=False)
    assert not policy.attempt_due(101.2)
    assert policy.probed(101.2, accepted=True)           # back: attempt now, not at 108
    assert policy.attempt_due(101.2)
    policy.attempt_started()
    assert not policy.probe_due(101.3)                   # no checks while an attempt runs


def test_a_connect_failure_without_tcp_keeps_checking_the_port():
    policy = _policy()
    policy.attempt_started()
    assert policy.failed(10.0, absent=True) == 8.0 and policy.state == IngestState.ABSENT
    assert not policy.probe_due(10.2) and policy.probe_due(10.5)
    assert policy.probed(11.0, accepted=True) and policy.attempt_due(11.0)


def test_a_refusal_is_not_an_absence_it_waits_the_whole_backoff():
    policy = _policy()
    policy.attempt_started()
    assert policy.failed(10.0, absent=False) == 8.0 and policy.state == IngestState.WAITING
    for t in (10.0, 11.0, 17.9):
        assert not policy.probe_due(t) and not policy.attempt_due(t)
    assert policy.attempt_due(18.0)
    policy.attempt_started()
    assert policy.failed(18.0, absent=False) == 12.0     # x1.5


def test_a_drop_from_an_ingest_that_still_accepts_keeps_the_backoff():
    policy = _policy()
    policy.attempt_started()
    policy.connected()
    policy.dropped(50.0)
    assert not policy.probed(50.0, accepted=True)        # it is there and let us go
    assert policy.state == IngestState.WAITING
    assert not policy.probe_due(51.0) and not policy.attempt_due(57.9) and policy.attempt_due(58.0)


def test_without_checks_the_policy_is_the_backoff():
    policy = _policy(probe_s=0)
    policy.attempt_started()
    policy.connected()
    policy.dropped(0.0)
    assert policy.state == IngestState.WAITING and not policy.probe_due(0.0)
    policy.attempt_started()
    policy.failed(8.0, absent=True)
    assert policy.state == IngestState.WAITING and not policy.probe_due(8.5)


def test_back_on_air_within_a_second_of_the_ingest_returning(nginx, tmp_path):
    port = free_port()
    # a long backoff, so that only the port check can bring it back this soon
    config = write_config(tmp_path / "config.yaml", control={"port": port},
                          output={"url": nginx.url(KEY),
                                  "reconnect": {"initial_s": 8, "factor": 1.5, "jitter": 0}})
    proc = start_broadcaster("run", "-c", str(config), "--size", "320x240", "--fps", "15")
    try:
        delays = [seconds_back_on_air(nginx, port, down_s, proc=proc) for down_s in (1.0, 3.0)]
    finally:
        _, err = stop(proc)
    assert proc.returncode == 0, err[-3000:]
    assert all(d < 1.5 for d in delays), delays
    assert err.count("accepts connections again: reconnecting now") == 2, err[-3000:]
    assert KEY not in err


def test_an_ingest_that_refuses_us_is_not_hammered(nginx, tmp_path):
    port = free_port()
    # nginx-rtmp answers the handshake and refuses the unknown application
    refused_url = nginx.url(KEY).replace("/live/", "/nosuchapp/")
    config = write_config(tmp_path / "config.yaml", control={"port": port},
                          output={"url": refused_url,
                                  "reconnect": {"initial_s": 2, "factor": 1, "jitter": 0}})
    proc = start_broadcaster("run", "-c", str(config), "--size", "320x240", "--fps", "15")
    try:
        def attempts():
            return sample(metrics(port), "broadcaster_connect_attempts",
                          "broadcaster_connect_attempts_total")
        wait_for(lambda: attempts() >= 1, 30, what="the first connect attempt", proc=proc)
        first = attempts()
        time.sleep(5)
        made = attempts() - first
    finally:
        _, err = stop(proc)
    assert proc.returncode == 0, err[-3000:]
    assert 1 <= made <= 3, (made, err[-3000:])          # every 2 s, not every 0.5 s
    assert "accepts connections again" not in err
    assert KEY not in err


def test_a_hung_ingest_is_checked_with_a_handshake_and_retried_once_it_answers():
    policy = _policy()
    policy.attempt_started()
    assert policy.failed(10.0, absent=False, hung=True) == 8.0 and policy.state == IngestState.HUNG
    assert policy.checks_handshake
    assert not policy.probe_due(10.2) and policy.probe_due(10.5)
    assert not policy.probed(10.5, accepted=False) and policy.state == IngestState.HUNG
    assert policy.probed(12.0, accepted=True) and policy.attempt_due(12.0)   # not at 18
    policy.attempt_started()
    assert not policy.checks_handshake and not policy.probe_due(12.5)


def test_back_on_air_within_a_second_of_a_hung_ingest_being_replaced(nginx, tmp_path):
    """A silent listener (accepts, never answers) stands on the ingest's port; when nginx-rtmp
    is back in its place the handshake check brings the stream back, not the 8 s backoff."""
    from tests.support.servers.silent import SilentListener

    port = free_port()
    config = write_config(tmp_path / "config.yaml", control={"port": port},
                          output={"url": nginx.url(KEY), "connect_timeout_s": 1,
                                  "reconnect": {"initial_s": 8, "factor": 1.5, "jitter": 0}})
    proc = start_broadcaster("run", "-c", str(config), "--size", "320x240", "--fps", "15")
    try:
        wait_for(lambda: on_air(port), 30, interval=0.1, what="the broadcast on air", proc=proc)
        nginx.stop()
        with SilentListener(nginx.port) as silent:
            wait_for(lambda: silent.accepted >= 2, 30, what="a connect attempt to the hung ingest",
                     proc=proc)
            time.sleep(1.5)                    # the attempt gives up, the checks begin
        nginx.start()
        back_from = time.monotonic()
        wait_for(lambda: on_air(port), 15, interval=0.02, what="the broadcast back on air",
                 proc=proc)
        back_after = time.monotonic() - back_from
    finally:
        _, err = stop(proc)
    assert proc.returncode == 0, err[-3000:]
    assert "answers the handshake again: reconnecting now" in err, err[-3000:]
    assert back_after < 3.0, back_after
    assert KEY not in err
