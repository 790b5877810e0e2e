"""One short real step test: `broadcaster run` through a tc-shaped link in a network namespace,
RTMP and SRT with rate control on (tools/step_test.py, 3 -> 1 -> 3 Mbit/s, a few s each).

Needs root (CI runs as root); elsewhere it is skipped with the reason printed.
"""

import pytest

from tests.support.steptest import run_short_step_test
from tools import step_test


def test_short_step_test_cuts_on_a_narrowing_link_without_a_disconnect(tmp_path):
    why = step_test.namespace_unavailable()
    if why:
        print(f"step test skipped: {why}")
        pytest.skip(why)
    out = tmp_path / "out"
    # run_short_step_test checks: no disconnect, and after 3 -> 1 Mbit/s the queue is back under
    # 200 ms within a few seconds ...
    run_short_step_test(out, timeout=240)
    assert (out / "step_test.png").stat().st_size > 10_000
    rows = (out / "step_test.csv").read_text().splitlines()
    assert rows[0].startswith("protocol,mode,t_s,capacity_kbps,encoder_kbps")
    # ... because the encoder bitrate went down to fit the 1 Mbit/s link
    at_1m = [r.split(",") for r in rows[1:] if r.split(",")[3] == "1000"
             and float(r.split(",")[2]) > 8.0]
    assert at_1m and sum(int(r[4]) for r in at_1m) / len(at_1m) <= 1000
