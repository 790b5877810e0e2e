"""One short real step test: `broadcaster run` through a tc-shaped link in a network namespace,
RTMP and SRT with rate control on (tools/step_test.py, 3 -> 1 -> 3 Mbit/s, a few s each).

Needs root (CI runs as root); elsewhere it is skipped with the reason printed.
"""

import pytest

from tests.support.steptest import (
    run_narrow_reconnect_test,
    run_narrow_step_test,
    run_short_step_test,
)
from tools import step_test


@pytest.mark.xfail(strict=False, reason="load-sensitive: an RTMP peak over 2 s in about 1 run of 10, "
                   "on main before issue 13 as often as after (16 runs each way, in the same "
                   "conditions: 2/8 before, 1/16 after, 1/8 with its pacing and floor undone)")
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


# (video timestamps are whole frame periods: a gap of exactly one second reads 1.0000x)
FREEZE_LIMIT_S = 1.0 + 1e-3


def test_a_silent_anchor_keeps_its_picture_moving_when_the_link_narrows_to_400_kbit(tmp_path):
    """Issue 13: with no audio bed, audio alone makes a few kbit/s and nothing else queues;
    the picture must not stand still for seconds on a link that carries far more than audio.
    What the ingest recorded (nginx-rtmp's FLV, srt-live-transmit's TS) is read with PyAV."""
    why = step_test.namespace_unavailable()
    if why:
        print(f"step test skipped: {why}")
        pytest.skip(why)
    figures = run_narrow_step_test(tmp_path / "out", timeout=240)
    for protocol, f in figures.items():
        assert f["worst_freeze_s"] is not None, (protocol, "nothing recorded")
        assert max(f["freeze_after_step_s"]) <= FREEZE_LIMIT_S, (protocol, f)
        # the ingest's video fits the new link soon, and is not starved on it
        assert f["ingest_under_capacity_s"][0] is not None and f["ingest_under_capacity_s"][0] <= 3.0, (protocol, f)
        assert f["ingest_half_share_s"][0] is not None and f["ingest_half_share_s"][0] <= 10.0, (protocol, f)


def test_a_reconnect_on_a_narrow_link_opens_with_less_audio(tmp_path):
    """The first connection opens with the configured 128 kbit/s of AAC; once the link has
    narrowed to 400 kbit/s and been measured, a reconnect opens with 64 (audio_rate.py).
    What nginx-rtmp recorded of each session is read with PyAV."""
    why = step_test.namespace_unavailable()
    if why:
        print(f"step test skipped: {why}")
        pytest.skip(why)
    f = run_narrow_reconnect_test(tmp_path / "out", reconnect_at=15.0, timeout=240)
    audio = f["audio_kbps_per_session"]
    assert f["reconnects"] >= 1 and len(audio) >= 2, f
    assert 110 <= audio[0] <= 140, audio          # AAC-LC at 128 kbit/s, as configured
    assert 50 <= audio[-1] <= 75, audio           # at 64 after the reconnect
