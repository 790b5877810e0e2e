"""`broadcaster bandwidth` as an operator runs it: the table for the shipped config, and with
--measure the rates read from a real running broadcaster's /metrics."""

import re
import time

from tests.support.broadcaster_proc import (
    healthz,
    metrics,
    run_broadcaster,
    sample,
    start_broadcaster,
    write_config,
)
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import stop

KEY = "bandwidth_key_3f9a"


def _row(text, link, direction):
    for line in text.splitlines():
        cells = line.split()
        if cells[:2] == [link, direction]:
            return [float(c) for c in cells if re.fullmatch(r"-?\d+(\.\d+)?", c)]
    raise AssertionError(f"no {link} {direction} row in:\n{text}")


def test_bandwidth_table_for_the_shipped_config():
    result = run_broadcaster("bandwidth", timeout=60)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "all local" in text and "ASR+LLM remote" in text and "all remote" in text
    # shipped config: 1500 kbit/s video + 128 kbit/s audio, a little container overhead
    local, remote_ai, remote_all = _row(text, "video_push", "up")
    assert 1628 <= local <= 1700 and local == remote_ai == remote_all
    assert _row(text, "asr_uplink", "up")[0] == 0 and _row(text, "asr_uplink", "up")[1] > 0
    assert _row(text, "tts_download", "down")[1] == 0 and _row(text, "tts_download", "down")[2] > 0
    assert "measured" not in text


def test_bandwidth_measure_reads_a_running_broadcaster(nginx, tmp_path):
    port = free_port()
    config = write_config(tmp_path / "config.yaml", output={"url": nginx.url(KEY)},
                          video={"bitrate_kbps": 600}, control={"port": port})
    proc = start_broadcaster("run", "-c", str(config), "--size", "320x240")
    try:
        wait_for(lambda: healthz(port)[0] == 200, 15, what="on air")
        time.sleep(1)
        before, t0 = metrics(port), time.monotonic()
        result = run_broadcaster("bandwidth", "-c", str(config), "--measure", "3", timeout=30)
        after, t1 = metrics(port), time.monotonic()
    finally:
        out, err = stop(proc)
    assert proc.returncode == 0, err
    assert result.returncode == 0, result.stderr
    assert f"measured over 3 s from http://127.0.0.1:{port}/metrics" in result.stdout
    measured = _row(result.stdout, "video_push", "up")[-1]

    def pushed(fam):
        return sample(fam, "broadcaster_link_bytes", "broadcaster_link_bytes_total",
                      link="video_push", direction="up")
    # what really went to nginx over a window that contains the --measure window
    wire_kbps = (pushed(after) - pushed(before)) * 8 / 1000 / (t1 - t0)
    print(f"measured video_push {measured} kbit/s, wire {wire_kbps:.1f} kbit/s")
    assert wire_kbps > 20
    assert 0.6 * wire_kbps <= measured <= 1.6 * wire_kbps, (measured, wire_kbps)
    # and no more than the configured ceiling allows (600 video + 128 audio + overhead)
    assert measured <= 1.3 * (600 + 128)
    assert _row(result.stdout, "llm", "down")[-1] == 0      # no LLM in this run: nothing measured


def test_bandwidth_measure_without_a_running_broadcaster_is_a_clear_error(tmp_path):
    port = free_port()
    config = write_config(tmp_path / "config.yaml", control={"port": port})
    result = run_broadcaster("bandwidth", "-c", str(config), "--measure", "1", timeout=30)
    assert result.returncode == 1
    assert f"cannot read http://127.0.0.1:{port}/metrics" in result.stderr
    assert "running `broadcaster run`" in result.stderr
    assert "Traceback" not in result.stderr
