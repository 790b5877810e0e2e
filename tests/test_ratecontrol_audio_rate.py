"""The audio bitrate a (re)connect opens at: the configured one, or less on a link the rate
controller measured to be narrow (audio_rate.py), and the controller budgeting what the
session on air really carries."""

from __future__ import annotations

import pytest

from broadcaster.ratecontrol.audio_rate import audio_kbps_for
from broadcaster.ratecontrol.controller import RateControlConfig, RateController
from broadcaster.ratecontrol.sample import LinkSample

MARGIN, OVERHEAD = 0.92, 0.06


@pytest.mark.parametrize("capacity,expected", [
    (None, 128),          # nothing measured yet (the first connection): as configured
    (6000.0, 128),
    (600.0, 128),         # 0.92 x 600 / 1.06 = 521 kbit/s usable: a quarter is 130
    (500.0, 96),
    (400.0, 64),          # the narrow link: 64 leaves the picture ~30 % more
    (150.0, 64),          # never below the last step
])
def test_audio_takes_at_most_a_quarter_of_a_measured_link(capacity, expected):
    assert audio_kbps_for(128, capacity, margin=MARGIN, overhead=OVERHEAD) == expected


def test_the_configured_rate_is_never_exceeded_and_is_the_first_step():
    assert audio_kbps_for(96, 6000.0, margin=MARGIN, overhead=OVERHEAD) == 96
    assert audio_kbps_for(96, 500.0, margin=MARGIN, overhead=OVERHEAD) == 96
    assert audio_kbps_for(96, 400.0, margin=MARGIN, overhead=OVERHEAD) == 64
    assert audio_kbps_for(192, 6000.0, margin=MARGIN, overhead=OVERHEAD) == 192
    assert audio_kbps_for(192, 700.0, margin=MARGIN, overhead=OVERHEAD) == 128
    assert audio_kbps_for(48, 100.0, margin=MARGIN, overhead=OVERHEAD) == 48


def _on_a_400_kbit_link(ctl: RateController) -> None:
    now = 0.0
    for i in range(200):
        now += 0.1
        ctl.update(LinkSample(now=now, send_rate_kbps=380.0, queue_delay_ms=0.0,
                              busy_rate_kbps=400.0 if i % 20 == 0 else None))


def test_the_controller_chooses_from_what_it_measured_and_budgets_the_audio_on_air():
    cfg = RateControlConfig(floor_kbps=150, ceiling_kbps=3000, start_kbps=150)
    ctl = RateController(cfg)
    assert ctl.session_audio_kbps(128) == 128              # nothing measured yet
    _on_a_400_kbit_link(ctl)
    assert ctl.session_audio_kbps(128) == 64
    with_128 = ctl.update(LinkSample(now=30.0, send_rate_kbps=380.0, queue_delay_ms=0.0))
    ctl.budget_audio(64)                                   # the reconnected session's audio
    assert ctl.config.audio_kbps == 64
    with_64 = ctl.update(LinkSample(now=30.1, send_rate_kbps=380.0, queue_delay_ms=0.0))
    # the link target is the same; the 64 kbit/s the audio no longer takes go to the picture
    assert with_64.link_target_kbps == pytest.approx(with_128.link_target_kbps)
    assert with_64.video_kbps - with_128.video_kbps == pytest.approx(64, abs=1)
    assert with_128.link_target_kbps == pytest.approx(MARGIN * 400.0, rel=0.03)   # recovered
