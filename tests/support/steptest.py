"""One short real step test (tools/step_test.py: 3 -> 1 -> 3 Mbit/s, a few seconds each, RTMP
and SRT with rate control on) and the figures it must reach on any link."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.paths import TOOLS

SCHEDULE = "3000:5,1000:6,3000:4"


def run_short_step_test(out: Path, *options: str, timeout: float) -> tuple[str, dict]:
    """Runs it into out (options such as "--link", "proxy"); returns its stdout and the figures
    per protocol, once both protocols went through without a disconnect and settled."""
    result = subprocess.run([sys.executable, str(TOOLS / "step_test.py"), *options, "--schedule", SCHEDULE,
                             "--modes", "on", "--protocols", "rtmp,srt", "--out", str(out)],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    print(result.stdout)
    figures = {f["protocol"]: f for f in json.loads((out / "figures.json").read_text())}
    assert set(figures) == {"rtmp", "srt"}
    for protocol, f in figures.items():
        assert f["reconnects"] == 0 and f["offline_ticks"] == 0, (protocol, f)
        # after 3 -> 1 Mbit/s the queue is back under 200 ms within a few seconds
        settle = f["settle_after_down_s"][0]
        assert settle is not None and settle < 4.0, (protocol, f)
        assert f["peak_delay_ms"] < 2000, (protocol, f)
    return result.stdout, figures
