"""The `ratecontrol:` config section: defaults, knobs, and errors naming the file and key."""

import json

import pytest

from broadcaster.config import AudioSettings, VideoSettings
from broadcaster.errors import ConfigError
from broadcaster.ratecontrol.settings import ratecontrol_settings
from tests.support.broadcaster_proc import run_broadcaster

VIDEO = VideoSettings(bitrate_kbps=3000, min_bitrate_kbps=300)
AUDIO = AudioSettings(bitrate_kbps=96)


def settings(data, tmp_path=None):
    return ratecontrol_settings(data, "conf.yaml", VIDEO, AUDIO, tmp_path)


def test_defaults_take_floor_ceiling_and_audio_from_their_sections():
    s = settings(None)
    assert s.enabled is True and s.tick_s == pytest.approx(0.1)
    assert (s.controller.floor_kbps, s.controller.ceiling_kbps) == (300, 3000)
    assert s.controller.audio_kbps == 96 and s.controller.start_kbps is None
    assert s.tcp_notsent_lowat == 64 * 1024 and s.trace is None


def test_knobs_are_applied(tmp_path):
    s = settings({"enabled": False, "tick_ms": 50, "start_kbps": 1200, "max_fps_divisor": 3,
                  "high_delay_ms": 150, "emergency_delay_ms": 400, "drain_time_s": 2,
                  "capacity_margin": 0.9, "tcp_notsent_lowat_kb": 0, "trace": "t.csv"}, tmp_path)
    assert s.enabled is False and s.tick_s == pytest.approx(0.05)
    c = s.controller
    assert (c.start_kbps, c.max_fps_divisor, c.high_delay_ms, c.emergency_delay_ms) == (1200, 3, 150, 400)
    assert c.drain_time_s == 2 and c.capacity_margin == 0.9
    assert s.tcp_notsent_lowat is None and s.trace == tmp_path / "t.csv"


@pytest.mark.parametrize("data, key, words", [
    ({"enable": True}, "ratecontrol.enable", "unknown key"),
    ({"enabled": "yes"}, "ratecontrol.enabled", "true or false"),
    ({"tick_ms": 5}, "ratecontrol.tick_ms", "between 20 and 1000"),
    ({"start_kbps": 5000}, "ratecontrol.start_kbps", "between 300 and 3000"),
    ({"high_delay_ms": 300, "emergency_delay_ms": 200}, "ratecontrol.emergency_delay_ms",
     "above high_delay_ms"),
    ({"capacity_margin": 1.5}, "ratecontrol.capacity_margin", "between 0.5 and 1"),
    ({"max_fps_divisor": 2.5}, "ratecontrol.max_fps_divisor", "whole number"),
    ([1, 2], "ratecontrol", "must be a mapping"),
])
def test_bad_values_name_the_file_and_key(data, key, words):
    with pytest.raises(ConfigError) as err:
        settings(data)
    text = str(err.value)
    assert "conf.yaml" in text and key in text and words in text


def test_broadcaster_run_refuses_a_bad_ratecontrol_section(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"ratecontrol": {"tick_ms": "fast"}}))
    result = run_broadcaster("run", "-c", str(cfg), "--output", "srt://127.0.0.1:9?mode=caller",
                             "--duration", "1", timeout=60)
    assert result.returncode != 0
    assert f"{cfg}: ratecontrol.tick_ms: must be a whole number" in result.stderr
