"""An ingest whose port accepts TCP and then never speaks (a hung ingest, a load balancer in
front of one), or one that completes the RTMP handshake and then never answers `connect`,
must not freeze the process: the connect gives up after connect_timeout_s and is retried,
/healthz keeps answering, --duration ends the run and SIGTERM ends it at once."""

import signal
import time

import pytest

from broadcaster.transport.rtmp_probe import IngestAbsent, IngestSilent, rtmp_handshake
from tests.support.broadcaster_proc import (
    FAST_RECONNECT,
    healthz,
    start_broadcaster,
    write_config,
)
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import stop
from tests.support.servers.silent import SilentListener

KEY = "silent_key_5d1c9e"


def _config(tmp_path, port: int):
    return write_config(tmp_path / "config.yaml", control={"port": port},
                        output={"connect_timeout_s": 1, "reconnect": FAST_RECONNECT})


def _healthz_answers_throughout(port: int, proc, seconds: float) -> int:
    """/healthz answers (503: not on air) every time it is asked for `seconds`."""
    wait_for(lambda: healthz(port)[0] == 503, 20, what="/healthz to answer", proc=proc)
    answers = 0
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        status, body = healthz(port, timeout=2)
        assert status == 503 and body["live"] and not body["on_air"], body
        answers += 1
        time.sleep(0.3)
    return answers


def test_the_handshake_probe_names_a_silent_and_an_absent_ingest():
    with SilentListener() as silent:
        started = time.monotonic()
        with pytest.raises(IngestSilent, match="did not answer the RTMP handshake"):
            rtmp_handshake("127.0.0.1", silent.port, False, 0.5, "rtmp://127.0.0.1/live/****")
        assert time.monotonic() - started < 2
        with pytest.raises(IngestSilent, match="TLS handshake"):
            rtmp_handshake("127.0.0.1", silent.port, True, 0.5, "rtmps://127.0.0.1/live/****")
    with pytest.raises(IngestAbsent):
        rtmp_handshake("127.0.0.1", free_port(), False, 0.5, "rtmp://127.0.0.1/live/****")


# a silent port, and an ingest that completes the RTMP handshake and never answers `connect`
@pytest.mark.parametrize("handshake, says", [(False, "did not answer the RTMP handshake"),
                                             (True, "did not answer connect in time")])
def test_duration_ends_a_run_against_a_silent_ingest(tmp_path, handshake, says):
    port = free_port()
    with SilentListener(handshake=handshake) as silent:
        proc = start_broadcaster("run", "-c", str(_config(tmp_path, port)), "--size", "320x240",
                                 "--fps", "15", "--duration", "8",
                                 "--output", f"rtmp://127.0.0.1:{silent.port}/live/{KEY}")
        try:
            assert _healthz_answers_throughout(port, proc, 3) >= 5
            _, err = proc.communicate(timeout=25)
        finally:
            if proc.poll() is None:
                stop(proc, signal.SIGKILL)
        assert silent.accepted >= 2, "the connect was not retried"
        if handshake:
            assert silent.handshakes >= 2 and silent.bytes_after_handshake > 0, "no connect sent"
    assert proc.returncode == 0, err[-3000:]
    assert says in err, err[-3000:]
    assert "broadcast ended after" in err
    assert KEY not in err


@pytest.mark.parametrize("scheme, handshake", [("rtmp", False), ("rtmps", False), ("rtmp", True)])
def test_sigterm_ends_a_run_against_a_silent_ingest(tmp_path, scheme, handshake):
    port = free_port()
    with SilentListener(handshake=handshake) as silent:
        proc = start_broadcaster("run", "-c", str(_config(tmp_path, port)), "--size", "320x240",
                                 "--fps", "15",
                                 "--output", f"{scheme}://127.0.0.1:{silent.port}/live/{KEY}")
        try:
            _healthz_answers_throughout(port, proc, 2.5)
            assert silent.handshakes >= 1 or not handshake
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            _, err = proc.communicate(timeout=10)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                stop(proc, signal.SIGKILL)
    assert proc.returncode == 0, err[-3000:]
    assert took < 5, f"SIGTERM took {took:.1f} s"
    assert "received SIGTERM" in err, err[-3000:]
    assert KEY not in err
