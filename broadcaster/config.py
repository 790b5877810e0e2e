"""Typed configuration from config.yaml plus environment overrides for secrets.

The stream URL/key and API keys may live in the environment (or systemd credentials) rather
than the file; every secret found is registered with `redact` the moment it is read.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, urlsplit

from broadcaster import redact
from broadcaster.credentials import read_credential
from broadcaster.errors import ConfigError
from broadcaster.schema import Section, load_yaml_mapping
from broadcaster.service.access import is_loopback_host

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PACKAGE_ROOT / "config.yaml"
DEFAULT_RECORDING = "recordings/broadcast-{time}.flv"
OUTPUT_SCHEMES = ("rtmp", "rtmps", "srt", "file")
MIN_CONTROL_TOKEN_CHARS = 16
FILE_EXTENSIONS = {".flv": "flv", ".ts": "mpegts", ".mkv": "matroska"}
# Sections read elsewhere, passed through as features: tts, chat, responder, mic and
# ratecontrol are validated by the modules that read them; asr and llm only feed
# `broadcaster bandwidth`; service is accepted but read by nothing.
FEATURE_SECTIONS = ("tts", "chat", "responder", "llm", "mic", "asr", "ratecontrol", "service")


@dataclass(frozen=True)
class ReconnectSettings:
    initial_s: float = 2.0
    factor: float = 1.5
    max_s: float = 60.0
    jitter: float = 0.2
    probe_s: float = 0.5        # while an RTMP ingest is absent, check its port this often


@dataclass(frozen=True)
class OutputSettings:
    url: str = DEFAULT_RECORDING
    connect_timeout_s: float = 5.0
    write_timeout_s: float = 5.0
    reconnect: ReconnectSettings = field(default_factory=ReconnectSettings)


@dataclass(frozen=True)
class VideoSettings:
    bitrate_kbps: int = 1500          # the ceiling: the encoder is opened with maxrate = this
    min_bitrate_kbps: int = 250       # the floor the rate controller may go down to
    keyframe_interval_s: float = 2.0
    profile: str = "high"
    buffer_s: float = 0.5             # VBV buffer, in seconds at the current bitrate
    size: tuple[int, int] | None = None   # overrides the scene's canvas
    fps: int | None = None


@dataclass(frozen=True)
class AudioSettings:
    bitrate_kbps: int = 128
    sample_rate: int = 48000


@dataclass(frozen=True)
class ControlSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class LogSettings:
    level: str = "info"
    format: str = "text"


@dataclass(frozen=True)
class Config:
    source: str
    base_dir: Path
    scenes_dir: Path
    scene: str = "default"
    output: OutputSettings = field(default_factory=OutputSettings)
    video: VideoSettings = field(default_factory=VideoSettings)
    audio: AudioSettings = field(default_factory=AudioSettings)
    control: ControlSettings = field(default_factory=ControlSettings)
    logging: LogSettings = field(default_factory=LogSettings)
    features: dict = field(default_factory=dict)

    def with_overrides(self, **changes) -> "Config":
        return replace(self, **changes)


def load_config(path: str | Path | None = None, env: dict | None = None) -> Config:
    """Load config.yaml (the packaged default when path is None) and apply the environment."""
    env = os.environ if env is None else env
    cfg_path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    source = str(cfg_path)
    data = load_yaml_mapping(cfg_path) if (path is not None or cfg_path.exists()) else {}
    top = Section(data, source)
    top.allow_only(("scene", "scenes_dir", "output", "video", "audio", "control", "logging")
                   + FEATURE_SECTIONS)
    base_dir = cfg_path.resolve().parent
    scenes_dir = Path(top.text("scenes_dir", "scenes"))
    if not scenes_dir.is_absolute():
        scenes_dir = base_dir / scenes_dir
        if not top.has("scenes_dir") and not scenes_dir.is_dir():
            # a config copied elsewhere (e.g. /etc/broadcaster) still finds the shipped scenes
            scenes_dir = PACKAGE_ROOT / "scenes"
    config = Config(
        source=source,
        base_dir=base_dir,
        scenes_dir=scenes_dir,
        scene=top.text("scene", "default"),
        output=_output(top.section("output"), env),
        video=_video(top.section("video")),
        audio=_audio(top.section("audio")),
        control=_control(top.section("control"), env),
        logging=_logging(top.section("logging")),
        features={name: data.get(name) or {} for name in FEATURE_SECTIONS},
    )
    return config


def _output(sec: Section, env) -> OutputSettings:
    sec.allow_only(("url", "connect_timeout_s", "write_timeout_s", "reconnect"))
    url = env.get("BROADCASTER_OUTPUT") or sec.text("url", DEFAULT_RECORDING)
    key = env.get("BROADCASTER_STREAM_KEY") or read_credential("stream_key", env)
    key = key.strip() if key else None
    url = apply_stream_key(url, key, sec.source)
    passphrase = env.get("BROADCASTER_SRT_PASSPHRASE") or read_credential("srt_passphrase", env)
    url = apply_srt_passphrase(url, passphrase.strip() if passphrase else None, sec.source)
    rec = sec.section("reconnect")
    rec.allow_only(("initial_s", "factor", "max_s", "jitter", "probe_s"))
    reconnect = ReconnectSettings(
        initial_s=rec.number("initial_s", 2.0, minimum=0.1, maximum=600),
        factor=rec.number("factor", 1.5, minimum=1.0, maximum=10),
        max_s=rec.number("max_s", 60.0, minimum=0.1, maximum=3600),
        jitter=rec.number("jitter", 0.2, minimum=0, maximum=1),
        probe_s=rec.number("probe_s", 0.5, minimum=0, maximum=60),
    )
    out = OutputSettings(
        url=url,
        connect_timeout_s=sec.number("connect_timeout_s", 5.0, minimum=0.5, maximum=120),
        write_timeout_s=sec.number("write_timeout_s", 5.0, minimum=0.5, maximum=120),
        reconnect=reconnect,
    )
    check_output_url(out.url, sec.source, sec.path("url"))
    return out


def apply_stream_key(url: str, key: str | None, source: str = "environment") -> str:
    """Put the stream key into the URL: at '{stream_key}', or appended to an rtmp app URL."""
    if "{stream_key}" in url:
        if not key:
            raise ConfigError(source, "output.url", "contains {stream_key} but no key is set "
                              "(set BROADCASTER_STREAM_KEY or a stream_key credential)")
        redact.register_secret(key)
        return url.replace("{stream_key}", key)
    if key:
        redact.register_secret(key)
        if url.startswith(("rtmp://", "rtmps://")):
            return url.rstrip("/") + "/" + key
    return url


def apply_srt_passphrase(url: str, passphrase: str | None, source: str = "environment") -> str:
    """Put an SRT passphrase into an srt:// URL: at '{srt_passphrase}', or as a `passphrase`
    query parameter when the URL has none. SRT accepts 10 to 79 characters."""
    if "{srt_passphrase}" not in url and not (passphrase and url.lower().startswith("srt://")):
        return url
    if not passphrase:
        raise ConfigError(source, "output.url", "contains {srt_passphrase} but no passphrase is "
                          "set (set BROADCASTER_SRT_PASSPHRASE or an srt_passphrase credential)")
    redact.register_secret(passphrase)
    if not 10 <= len(passphrase) <= 79:
        raise ConfigError(source, "output.url", f"the SRT passphrase has {len(passphrase)} "
                          "characters; SRT needs 10 to 79")
    encoded = quote(passphrase, safe="")
    redact.register_secret(encoded)
    if "{srt_passphrase}" in url:
        return url.replace("{srt_passphrase}", encoded)
    query = url.split("?", 1)[1] if "?" in url else ""
    if any(part.split("=", 1)[0].lower() == "passphrase" for part in query.split("&")):
        return url          # the URL's own passphrase wins, as the stream key's placeholder does
    return url + ("&" if "?" in url else "?") + "passphrase=" + encoded


def check_output_url(url: str, source: str, key: str) -> None:
    """Reject URLs we cannot publish to, naming the key (and never the stream key)."""
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        if scheme not in OUTPUT_SCHEMES:
            raise ConfigError(source, key, f"unsupported scheme {scheme!r} in "
                              f"{redact.redact_url(url)} (allowed: rtmp, rtmps, srt, or a file path)")
        if scheme in ("rtmp", "rtmps"):
            try:
                parts = urlsplit(url)
                parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
            except ValueError as exc:
                raise ConfigError(source, key, f"{redact.redact_url(url)}: bad host or port "
                                  f"({exc})") from None
            segments = [s for s in parts.path.split("/") if s]
            if not parts.hostname:
                raise ConfigError(source, key, f"{redact.redact_url(url)} has no host")
            if len(segments) < 2:
                raise ConfigError(source, key, f"{redact.redact_url(url)} needs an application "
                                  "and a stream key: rtmp://host/app/KEY (or set BROADCASTER_STREAM_KEY)")
            redact.register_secret("/".join(segments[1:]))
        if scheme == "srt":
            _register_srt_secrets(url)
        return
    ext = Path(url).suffix.lower()
    if ext not in FILE_EXTENSIONS:
        raise ConfigError(source, key, f"file output {url!r} must end in one of "
                          f"{', '.join(FILE_EXTENSIONS)}")


def _register_srt_secrets(url: str) -> None:
    """An SRT passphrase (and a streamid, which often carries the stream key) are secrets:
    register them raw and URL-decoded, so they are masked in any text, not only in URLs."""
    from urllib.parse import unquote
    query = url.replace("#", "%23").split("?", 1)[1] if "?" in url else ""
    for raw in query.split("&"):
        name, _, value = raw.partition("=")
        if name.lower() in ("passphrase", "streamid") and value:
            redact.register_secret(value)
            redact.register_secret(unquote(value))


def resolve_output_path(url: str) -> str:
    """Fill the {time} placeholder of a file output."""
    return url.replace("{time}", time.strftime("%Y%m%d-%H%M%S"))


def _video(sec: Section) -> VideoSettings:
    sec.allow_only(("bitrate_kbps", "min_bitrate_kbps", "keyframe_interval_s", "profile", "buffer_s"))
    ceiling = sec.integer("bitrate_kbps", 1500, minimum=100, maximum=50000)
    floor = sec.integer("min_bitrate_kbps", min(250, ceiling), minimum=50, maximum=50000)
    if floor > ceiling:
        raise sec.error("min_bitrate_kbps", f"must not exceed video.bitrate_kbps ({ceiling}), got {floor}")
    return VideoSettings(
        bitrate_kbps=ceiling,
        min_bitrate_kbps=floor,
        keyframe_interval_s=sec.number("keyframe_interval_s", 2.0, minimum=0.5, maximum=10),
        profile=sec.text("profile", "high", choices=("main", "high")),
        buffer_s=sec.number("buffer_s", 0.5, minimum=0.1, maximum=4),
    )


def _audio(sec: Section) -> AudioSettings:
    sec.allow_only(("bitrate_kbps", "sample_rate"))
    rate = sec.integer("sample_rate", 48000)
    if rate not in (44100, 48000):
        raise sec.error("sample_rate", f"must be 44100 or 48000, got {rate}")
    return AudioSettings(bitrate_kbps=sec.integer("bitrate_kbps", 128, minimum=32, maximum=320),
                         sample_rate=rate)


def _control(sec: Section, env) -> ControlSettings:
    sec.allow_only(("enabled", "host", "port", "token"))
    host = sec.text("host", "127.0.0.1").strip()
    token = env.get("BROADCASTER_CONTROL_TOKEN") or read_credential("control_token", env)
    if not token and sec.has("token"):
        token = sec.text("token")
    token = token.strip() if token else None
    if token:
        redact.register_secret(token)
        if len(token) < MIN_CONTROL_TOKEN_CHARS or any(c.isspace() for c in token):
            raise sec.error("token", f"must be at least {MIN_CONTROL_TOKEN_CHARS} characters "
                                     "without spaces")
    enabled = sec.boolean("enabled", True)
    if enabled and not token and not is_loopback_host(host):
        raise sec.error("token", f"is required when control.host ({host}) is not a loopback "
                                 "address (set it, or BROADCASTER_CONTROL_TOKEN)")
    return ControlSettings(enabled=enabled, host=host,
                           port=sec.integer("port", 8765, minimum=0, maximum=65535), token=token)


def _logging(sec: Section) -> LogSettings:
    sec.allow_only(("level", "format"))
    return LogSettings(level=sec.text("level", "info", choices=("debug", "info", "warning", "error")),
                       format=sec.text("format", "text", choices=("text", "json")))


def parse_size(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720); both even (yuv420p needs it)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError("command line", "--size", f"must look like 1280x720, got {text!r}") from None
    if not (16 <= w <= 3840 and 16 <= h <= 2160) or w % 2 or h % 2:
        raise ConfigError("command line", "--size", f"width and height must be even, 16..3840 x 16..2160, got {text!r}")
    return w, h
