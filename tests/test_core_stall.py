"""An ingest that stops reading (the process frozen, a black-holed link) never errors by
itself; the broadcaster must notice the blocked write, drop the connection and reconnect."""

import signal
import time

from broadcaster.output.stallguard import StallGuard
from tests.support.broadcaster_proc import start_broadcaster
from tests.support.processes import stop

KEY = "stall_key_0123456789"


def test_stall_guard_aborts_once_after_the_timeout():
    now = [100.0]
    aborted = []
    guard = StallGuard(5.0, clock=lambda: now[0])
    guard.begin(lambda: aborted.append(now[0]))
    assert not guard.check(104.9)
    assert guard.check(105.1) and aborted == [100.0]
    assert not guard.check(200.0)              # only once per blocked call
    guard.begin(lambda: aborted.append("second"))
    guard.end()
    assert not guard.check(1000.0) and guard.aborts == 1


def test_a_frozen_ingest_is_dropped_and_the_broadcast_reconnects(nginx, tmp_path):
    cfg = tmp_path / "config.yaml"
    # (a fixed bitrate: this is the stall guard's test; rate control would thin the stream
    # until the frozen peer's receive buffer takes far longer to fill)
    cfg.write_text("output:\n  write_timeout_s: 2\n  connect_timeout_s: 2\n"
                   "  reconnect: {initial_s: 0.5, max_s: 2}\nratecontrol: {enabled: false}\n"
                   f"scenes_dir: {tmp_path}\nscene: noisy\n")
    # a noise picture: every 2 s keyframe is ~1 MB, so the socket buffers fill within seconds
    import numpy as np
    from PIL import Image
    noise = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    (tmp_path / "noisy.yaml").write_text("canvas: {width: 1280, height: 720, fps: 25}\n"
                                         "background: {image: noise.png}\n")
    proc = start_broadcaster("run", "-c", str(cfg), "--output", nginx.url(KEY), "--bitrate", "20000",
                             "--duration", "30", "--control-port", "0")
    try:
        time.sleep(4)
        nginx.proc.send_signal(signal.SIGSTOP)          # the ingest stops reading
        time.sleep(14)
        nginx.proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=60)
    finally:
        stop(proc, signal.SIGKILL)
        if nginx.proc is not None:
            nginx.proc.send_signal(signal.SIGCONT)
    assert proc.returncode == 0, err
    assert "blocked for" in err and "dropping the connection" in err, err[-3000:]
    assert err.count("on air:") >= 2, err[-3000:]
    assert KEY not in err
