"""sd_notify from the real `broadcaster run`, read from a unix datagram socket bound here, the
way systemd's Type=notify sees it: READY=1 only once packets reached a real nginx-rtmp ingest,
WATCHDOG=1 while on air, STOPPING=1 on SIGTERM."""

import os
import signal
import subprocess
import time

from tests.support.broadcaster_proc import (
    FAST_RECONNECT,
    broadcaster_cmd,
    run_env,
    start_broadcaster,
    write_config,
)
from tests.support.paths import ROOT
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import stop
from tests.support.servers.nginx_rtmp import NginxRtmp
from tests.support.servers.sd_notify import NotifyListener

KEY = "sdnotify_key_5c1d"


def test_ready_after_the_ingest_accepted_watchdog_while_on_air_stopping_on_sigterm(tmp_path):
    listener = NotifyListener(tmp_path / "notify.sock")
    ingest = NginxRtmp(tmp_path / "nginx")            # not started yet: nothing to publish to
    config = write_config(tmp_path / "config.yaml",
                          output={"url": ingest.url(KEY), "reconnect": FAST_RECONNECT},
                          control={"port": free_port()})
    ready_seen = {}

    def on_message(text):
        if "READY=1" in text.split("\n") and "recordings" not in ready_seen:
            # at the moment READY arrives, nginx must already have accepted the publish
            ready_seen["recordings"] = ingest.recordings(KEY)

    listener.on_message = on_message
    env = run_env(NOTIFY_SOCKET=str(listener.path), WATCHDOG_USEC="1000000")
    # systemd sets WATCHDOG_PID to the main pid: exec keeps the shell's pid for python
    proc = subprocess.Popen(["sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"',
                             *broadcaster_cmd("run", "-c", str(config), "--size", "320x240")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=ROOT)
    try:
        # the media loop runs and pings the watchdog while the ingest is still unreachable
        wait_for(lambda: len(listener.times("WATCHDOG=1")) >= 2, 15, what="WATCHDOG=1 pings")
        proc.send_signal(signal.SIGHUP)   # a reload before going on air announces nothing
        time.sleep(1.5)
        assert listener.times("READY=1") == [], "READY=1 before any ingest accepted the stream"
        assert listener.times("RELOADING=1") == []
        ingest_up = time.monotonic()
        ingest.start()
        wait_for(lambda: listener.times("READY=1"), 15, what="READY=1 after the ingest came up")
        ready_at = listener.times("READY=1")[0]
        assert ready_at > ingest_up
        assert ready_seen["recordings"], "READY=1 arrived before nginx recorded a publish"
        # WATCHDOG=1 keeps coming while on air, about every WATCHDOG_USEC/2 = 0.5 s
        time.sleep(2.5)
        pings = [t for t in listener.times("WATCHDOG=1") if t > ready_at]
        assert len(pings) >= 3, pings
        assert max(b - a for a, b in zip(pings, pings[1:])) < 1.0
        assert proc.poll() is None
        # a reload on air: RELOADING=1, then READY=1 again (what Type=notify expects)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(listener.times("READY=1")) >= 2, 10, what="READY=1 after a reload")
        assert ready_at < listener.times("RELOADING=1")[0] < listener.times("READY=1")[1]
        out, err = stop(proc)
    finally:
        stop(proc, signal.SIGKILL)
        ingest.stop()
        listener.close()
    assert proc.returncode == 0, err
    texts = [text for _, text in listener.messages]
    stopping = [i for i, text in enumerate(texts) if "STOPPING=1" in text.split("\n")]
    assert stopping, texts[-5:]
    ready_index = next(i for i, text in enumerate(texts) if "READY=1" in text.split("\n"))
    assert ready_index < stopping[0]
    # the READY status line names the ingest without its stream key
    assert "STATUS=on air: rtmp://127.0.0.1" in texts[ready_index]
    assert all(KEY not in text for text in texts)
    assert KEY not in out + err


def test_no_watchdog_pings_when_watchdog_pid_names_another_process(tmp_path):
    """WATCHDOG_PID inherited from a parent it was meant for: the child must not ping."""
    listener = NotifyListener(tmp_path / "notify.sock")
    env = run_env(NOTIFY_SOCKET=str(listener.path), WATCHDOG_USEC="1000000",
                  WATCHDOG_PID=str(os.getpid()))
    proc = start_broadcaster("run", "--output", str(tmp_path / "w.flv"), "--size", "320x240",
                             "--duration", "3", "--control-port", str(free_port()), env=env)
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        listener.close()
    assert proc.returncode == 0, err
    assert listener.times("READY=1"), "a file output is on air at its first packet"
    assert listener.times("WATCHDOG=1") == []
