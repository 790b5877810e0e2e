"""Short real step tests (tools/step_test.py, RTMP and SRT with rate control on) and the
figures they must reach on any link: 3 -> 1 -> 3 Mbit/s, and the issue-13 case of a silent
720p25 anchor on a link that narrows from 6 to 0.4 Mbit/s."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.paths import TOOLS

SCHEDULE = "3000:5,1000:6,3000:4"


def _step_test(out: Path, options: tuple[str, ...], protocols: str, timeout: float) -> tuple[str, dict]:
    """Runs the step test (rate control on) into out; returns its stdout and the figures per
    protocol."""
    result = subprocess.run([sys.executable, str(TOOLS / "step_test.py"), *options, "--modes", "on",
                             "--protocols", protocols, "--out", str(out)],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    print(result.stdout)
    figures = {f["protocol"]: f for f in json.loads((out / "figures.json").read_text())}
    assert set(figures) == set(protocols.split(","))
    return result.stdout, figures


def _run(out: Path, options: tuple[str, ...], timeout: float) -> tuple[str, dict]:
    """Runs the step test into out; returns its stdout and the figures per protocol, once both
    protocols went through without a disconnect."""
    stdout, figures = _step_test(out, options, "rtmp,srt", timeout)
    for protocol, f in figures.items():
        assert f["reconnects"] == 0 and f["offline_ticks"] == 0, (protocol, f)
    return stdout, figures


def run_short_step_test(out: Path, *options: str, timeout: float) -> tuple[str, dict]:
    """3 -> 1 -> 3 Mbit/s (options such as "--link", "proxy"); returns the stdout and the
    figures, once both protocols settled after the step down."""
    stdout, figures = _run(out, (*options, "--schedule", SCHEDULE), timeout)
    for protocol, f in figures.items():
        # after 3 -> 1 Mbit/s the queue is back under 200 ms within a few seconds
        settle = f["settle_after_down_s"][0]
        assert settle is not None and settle < 4.0, (protocol, f)
        assert f["peak_delay_ms"] < 2000, (protocol, f)
    return stdout, figures


def run_narrow_step_test(out: Path, *options: str, timeout: float) -> dict:
    """The issue-13 case (--narrow --short --silent: a silent 720p25 anchor, ceiling 3000
    kbit/s, 6 -> 0.4 Mbit/s); returns the figures per protocol."""
    return _run(out, ("--narrow", "--short", "--silent", *options), timeout)[1]


def run_narrow_reconnect_test(out: Path, reconnect_at: float, timeout: float) -> dict:
    """The issue-13 link (--narrow --short, with the audio bed: AAC then sends its bitrate),
    RTMP, with nginx-rtmp restarted reconnect_at s into the schedule; returns the figures."""
    return _step_test(out, ("--narrow", "--short", "--reconnect-at", str(reconnect_at)), "rtmp",
                      timeout)[1]["rtmp"]
