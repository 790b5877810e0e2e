"""Every kind of bad config or scene gives one clear line naming the file and the key, exit 2."""

import textwrap

import pytest

from tests.support.broadcaster_proc import run_broadcaster, run_env
from tests.support.paths import ROOT


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def make_setup(tmp_path, config_text="", scene_text=None):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    write(scenes / "default.yaml", scene_text if scene_text is not None else
          (ROOT / "scenes" / "default.yaml").read_text())
    cfg = write(tmp_path / "config.yaml", config_text)
    return cfg, scenes / "default.yaml"


CONFIG_CASES = [
    ("video:\n  bitrate_kbps: fast\n", "video.bitrate_kbps", "must be a whole number"),
    ("video:\n  bitrate_kbps: 20\n", "video.bitrate_kbps", "between 100 and 50000"),
    ("video:\n  bitrate_kbps: 800\n  min_bitrate_kbps: 900\n", "video.min_bitrate_kbps", "must not exceed"),
    ("video:\n  profile: baseline\n", "video.profile", "must be one of main, high"),
    ("audio:\n  sample_rate: 22050\n", "audio.sample_rate", "44100 or 48000"),
    ("output:\n  url: http://example.com/live\n", "output.url", "unsupported scheme"),
    ("output:\n  url: rtmp://ingest.example.com/\n", "output.url", "needs an application and a stream key"),
    ("output:\n  url: recordings/out.mp3\n", "output.url", "must end in one of"),
    ("output:\n  reconnect:\n    factor: 0.5\n", "output.reconnect.factor", "between 1 and 10"),
    ("outptu:\n  url: x.flv\n", "outptu", "unknown key"),
    ("control:\n  port: 70000\n", "control.port", "between 0 and 65535"),
    ("logging:\n  format: xml\n", "logging.format", "text, json"),
    ("ratecontrol:\n  tick_ms: fast\n", "ratecontrol.tick_ms", "must be"),
    ("video: [1, 2]\n", "video", "must be a mapping"),
    ("video:\n  bitrate_kbps: 1000\n bad indent: 1\n", "", "invalid YAML: line"),
    ("scene: nosuchscene\n", "scene", "scene not found"),
]


@pytest.mark.parametrize("text,key,message", CONFIG_CASES)
def test_bad_config_values_name_file_key_and_what_is_allowed(tmp_path, text, key, message):
    cfg, _ = make_setup(tmp_path, text)
    result = run_broadcaster("check", "-c", str(cfg))
    assert result.returncode == 2, result.stdout + result.stderr
    err = result.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert "config.yaml" in err or "nosuchscene" in err
    assert key in err and message in err


SCENE_CASES = [
    ("canvas:\n  width: 853\n", "canvas.width", "must be even"),
    ("canvas:\n  fps: 0\n", "canvas.fps", "between 1 and 60"),
    ("background:\n  color: '#12345'\n", "background.color", "must be a colour"),
    ("background:\n  color: red\n  image: bg.png\n", "background.image", "choose one of"),
    ("background:\n  image: missing.png\n", "background.image", "file not found"),
    ("background:\n  gradient: {from: red, direction: sideways}\n", "background.gradient.to", "is required"),
    ("layers:\n  - image: logo.png\n    text: hi\n", "layers[0]", "exactly one of 'image' or 'text'"),
    ("layers:\n  - text: hi\n    size: big\n", "layers[0].size", "must be a whole number"),
    ("layers:\n  - image: notanimage.png\n", "layers[0].image", "not a readable image"),
    ("anchor:\n  x: 600\n  y: 0\n  width: 400\n  height: 300\n  renderer: static\n  portrait: p.png\n",
     "anchor.width", "goes past the canvas width"),
    ("anchor:\n  x: 0\n  y: 0\n  width: 100\n  height: 100\n  renderer: hologram\n", "anchor.renderer", "must be one of"),
    ("captions:\n  x: 0\n  y: 0\n  width: 100\n  height: 50\n  align: justify\n", "captions.align", "must be one of"),
    ("audio:\n  bed: nothere.ogg\n", "audio.bed", "file not found"),
    ("audio:\n  volume: 3\n", "audio.volume", "between 0 and 1"),
    ("colour: red\n", "colour", "unknown key"),
]


@pytest.mark.parametrize("text,key,message", SCENE_CASES)
def test_bad_scene_values_name_file_key_and_what_is_allowed(tmp_path, text, key, message):
    cfg, scene = make_setup(tmp_path, "", text)
    (tmp_path / "scenes" / "notanimage.png").write_text("this is not a png")
    result = run_broadcaster("check", "-c", str(cfg))
    assert result.returncode == 2, result.stdout + result.stderr
    err = result.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "default.yaml" in err and key in err and message in err


def test_bad_command_line_values_are_clear(tmp_path):
    for args, expected in ((["--size", "641x480"], "--size"), (["--fps", "0"], "--fps"),
                           (["--bitrate", "5"], "--bitrate"), (["--output", "ftp://x/y"], "--output"),
                           (["--duration", "-1"], "--duration")):
        result = run_broadcaster("run", *args, "--control-port", "0")
        assert result.returncode == 2, (args, result.stderr)
        assert expected in result.stderr and "Traceback" not in result.stderr


def test_unwritable_file_output_is_a_clear_error(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    result = run_broadcaster("run", "--output", str(blocker / "sub" / "out.flv"), "--duration", "1",
                             "--control-port", "0")
    assert result.returncode == 3
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr


def test_check_accepts_the_shipped_config_and_scenes():
    result = run_broadcaster("check")
    assert result.returncode == 0, result.stderr
    assert "default.yaml" in result.stdout


def test_stream_key_from_environment_is_used_and_never_printed(tmp_path):
    cfg, _ = make_setup(tmp_path, "output:\n  url: rtmp://127.0.0.1:1/live/{stream_key}\n"
                                  "  reconnect: {initial_s: 0.2}\n")
    env = run_env(BROADCASTER_STREAM_KEY="live_123456789_abcdef")
    result = run_broadcaster("run", "-c", str(cfg), "--duration", "2", "--control-port", "0", env=env)
    assert result.returncode == 0, result.stderr
    assert "connect failed" in result.stderr          # port 1 refuses: attempts are logged...
    assert "live_123456789_abcdef" not in result.stderr + result.stdout   # ...without the key
    assert "rtmp://127.0.0.1:1/live/***" in result.stderr


LIVE_CASES = [
    ("responder:\n  type: oracle\n", None, "responder", "not one of"),
    ("chat:\n  sources:\n    - {type: twitch, chanel: x}\n", None, "chat", "chanel"),
    ("tts:\n  engines:\n    - {engine: edge}\n", None, "tts.engines[0].voice", "is required"),
    ("tts:\n  engines:\n    - klingon\n", None, "tts.engines[0].engine", "must be one of"),
    ("", "script:\n  lines: ['']\n", "script.lines[0]", "non-empty"),
    ("", "chat_overlay: {x: 0, y: 0, width: 5000, height: 10}\n", "chat_overlay.width", "between"),
]


@pytest.mark.parametrize("config_text,scene_extra,key,message", LIVE_CASES)
def test_check_validates_voice_responder_chat_script_and_overlay(tmp_path, config_text, scene_extra, key, message):
    scene = (ROOT / "scenes" / "default.yaml").read_text() + (scene_extra or "")
    cfg, _ = make_setup(tmp_path, config_text, scene)
    result = run_broadcaster("check", "-c", str(cfg))
    assert result.returncode == 2, result.stdout + result.stderr
    err = result.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert key in err and message in err


def test_srt_passphrase_comes_from_the_environment_or_a_credential_and_is_masked(tmp_path):
    from broadcaster.config import apply_srt_passphrase
    from broadcaster.errors import ConfigError
    from broadcaster.redact import redact_text

    secret = "pass phrase&with=odd chars"
    url = apply_srt_passphrase("srt://ingest:9000?streamid=abc", secret)
    assert url == "srt://ingest:9000?streamid=abc&passphrase=pass%20phrase%26with%3Dodd%20chars"
    assert secret not in redact_text(f"pushing to {url}") and "pass%20phrase" not in redact_text(url)
    assert apply_srt_passphrase("srt://ingest:9000", secret).endswith("?passphrase=pass%20phrase%26with%3Dodd%20chars")
    assert apply_srt_passphrase("srt://i:1?pbkeylen=16&passphrase={srt_passphrase}", "0123456789") \
        == "srt://i:1?pbkeylen=16&passphrase=0123456789"
    assert apply_srt_passphrase("srt://i:1?passphrase=fromtheurl1", "0123456789") == "srt://i:1?passphrase=fromtheurl1"
    assert apply_srt_passphrase("rtmp://h/app/key", "0123456789") == "rtmp://h/app/key"
    with pytest.raises(ConfigError, match="10 to 79"):
        apply_srt_passphrase("srt://i:1", "short")
    with pytest.raises(ConfigError, match="no passphrase is set"):
        apply_srt_passphrase("srt://i:1?passphrase={srt_passphrase}", None)

    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "srt_passphrase").write_text("credential-passphrase\n")
    cfg, _ = make_setup(tmp_path, "output:\n  url: srt://127.0.0.1:9/?streamid=x\n")
    from broadcaster.config import load_config
    loaded = load_config(cfg, env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert loaded.output.url == "srt://127.0.0.1:9/?streamid=x&passphrase=credential-passphrase"
