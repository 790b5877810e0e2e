"""Values that look valid to a naive check (NaN, infinity, YAML aliases and deep nesting,
malformed URLs and ports) stop with one clear line naming the key, never a traceback."""

import time

import pytest

from broadcaster.backoff import Backoff
from broadcaster.chat.config import chat_settings_from_dict
from broadcaster.config import load_config
from broadcaster.errors import ConfigError
from broadcaster.schema import Section, is_number, load_yaml_mapping
from tests.support.broadcaster_proc import run_broadcaster
from tests.support.paths import ROOT


@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.inf"])
def test_non_finite_numbers_are_refused_naming_the_key(tmp_path, value):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"scenes_dir: {ROOT / 'scenes'}\noutput:\n  reconnect:\n    initial_s: {value}\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg, env={})
    assert err.value.key == "output.reconnect.initial_s"
    assert "must be a number" in str(err.value)


def test_is_number_is_false_for_nan_inf_and_bool():
    assert is_number(1) and is_number(0.5) and is_number(-3)
    assert not any(is_number(v) for v in (float("nan"), float("inf"), -float("inf"), True, "1", None))
    sec = Section({"n": float("nan")}, "f.yaml", "x")
    with pytest.raises(ConfigError, match="x.n: must be a whole number"):
        sec.integer("n", 1, minimum=0, maximum=5)


def test_backoff_refuses_nan():
    with pytest.raises(ValueError):
        Backoff(initial_s=float("nan"))


def test_yaml_alias_bomb_is_refused_fast_with_a_short_error(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        name = chr(ord("a") + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines.append("scene: *i")
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    with pytest.raises(ConfigError) as err:
        load_yaml_mapping(path)
    assert time.monotonic() - started < 2.0
    assert "aliases" in str(err.value) and "line 2" in str(err.value)
    assert len(str(err.value)) < 300


def test_deeply_nested_yaml_is_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("video: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested deeper than"):
        load_yaml_mapping(path)


def test_an_oversized_yaml_file_is_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("scene: " + "x" * (2 * 1024 * 1024) + "\n")
    with pytest.raises(ConfigError, match="over 1024 KiB"):
        load_yaml_mapping(path)


@pytest.mark.parametrize("url,message", [
    ("rtmp://[::1/live/sekrit123", "bad host or port"),
    ("rtmp://127.0.0.1:99999/live/sekrit123", "bad host or port"),
    ("rtmp://127.0.0.1:abc/live/sekrit123", "bad host or port"),
])
def test_malformed_rtmp_urls_are_config_errors(tmp_path, url, message):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"scenes_dir: {ROOT / 'scenes'}\noutput:\n  url: '{url}'\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg, env={})
    assert err.value.key == "output.url" and message in str(err.value)
    assert "sekrit123" not in str(err.value)


@pytest.mark.parametrize("data,fragment", [
    (["not", "a", "mapping"], "chat: expected a mapping"),
    ({"sources": [{"type": "twitch"}]}, "chat.sources[0]: missing key(s) ['channel']"),
    ({"selection": [1, 2]}, "chat.selection: expected a mapping"),
    ({"sources": [{"type": "twitch", "channel": "c", "idle_timeout_s": float("nan")}]},
     "chat.sources[0].idle_timeout_s: expected a positive number, got nan"),
    ({"sources": [{"type": "twitch", "channel": "c", "port": float("inf")}]},
     "chat.sources[0].port: expected a positive number, got inf"),
    ({"sources": [{"type": "twitch", "channel": "c", "port": 99999}]},
     "chat.sources[0].port: expected a port from 1 to 65535"),
    ({"sources": [{"type": "twitch", "channel": "c", "pong_timeout_s": -1}]},
     "chat.sources[0].pong_timeout_s: expected a positive number"),
    ({"sources": [{"type": "twitch", "channel": "c", "port": 6697.5}]},
     "chat.sources[0].port: expected a whole number"),
    ({"sources": [{"type": "twitch", "channel": "c", "tls": "yes"}]},
     "chat.sources[0].tls: expected true or false"),
    ({"sources": [{"type": "bilibili", "room_id": 5, "uid": float("nan")}]},
     "'uid' must be a whole number >= 0, got nan"),
])
def test_chat_section_errors_name_the_key_not_python_internals(data, fragment):
    with pytest.raises(ValueError) as err:
        chat_settings_from_dict(data)
    assert fragment in str(err.value)
    assert "__init__" not in str(err.value) and "dictionary update" not in str(err.value)


@pytest.mark.parametrize("args,option", [
    (["--duration", "nan"], "--duration"),
    (["--duration", "inf"], "--duration"),
    (["--duration", "-1"], "--duration"),
    (["--control-port", "99999"], "--control-port"),
])
def test_bad_run_options_stop_with_status_2(args, option):
    extra = [] if option == "--control-port" else ["--control-port", "0"]
    result = run_broadcaster("run", *args, *extra, timeout=60)
    assert result.returncode == 2, result.stderr
    assert option in result.stderr and "Traceback" not in result.stderr
