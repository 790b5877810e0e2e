"""Command line: run, check, snapshot, say, asr, asr-serve, ..."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from broadcaster.asr.protocol import TOKEN_ENV
from broadcaster.config import Config, check_output_url, load_config, parse_size
from broadcaster.errors import BroadcasterError, ConfigError
from broadcaster.logsetup import configure_logging, install_exception_hooks
from broadcaster.redact import redact
from broadcaster.scene import Scene, list_scenes, load_scene, scene_path

log = logging.getLogger("broadcaster")


def positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds above 0 (never nan or inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds above 0, got {text!r}")
    return value


def port_number(text: str) -> int:
    """argparse type: a TCP port 0..65535 (0: any free port)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="broadcaster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="go on air (records to a file by default)")
    _common(run)
    run.add_argument("--scene", help="scene name (scenes/NAME.yaml) or path")
    run.add_argument("--output", help="rtmp://host/app/KEY, rtmps://..., srt://host:port, or a file (.flv/.ts/.mkv)")
    run.add_argument("--duration", type=positive_seconds, help="stop after this many seconds (default: run until stopped)")
    run.add_argument("--size", help="canvas size WxH, overriding the scene")
    run.add_argument("--fps", type=int, help="frames per second, overriding the scene")
    run.add_argument("--bitrate", type=int, metavar="KBITS", help="video bitrate ceiling in kbit/s")
    run.add_argument("--control-port", type=port_number, help="local control endpoint port (0: any free port)")
    run.add_argument("--responder", choices=("llm", "read-aloud", "script"),
                     help="who answers chat, overriding the scene (script: only scripted lines)")
    run.add_argument("--mic", metavar="DEVICE_OR_FILE",
                     help="take the host's microphone: a device name or index, an audio file "
                          "(played in real time) or '-' (raw s16le 16 kHz mono on stdin)")

    say = sub.add_parser("say", help="make a running broadcaster's anchor say something")
    _common(say)
    say.add_argument("text", help="what the anchor says")
    say.add_argument("--interrupt", action="store_true", help="cut the current line first")
    say.add_argument("--control-port", type=port_number, help="the running broadcaster's control port")

    asr = sub.add_parser("asr", help="transcribe an audio file through the mic's VAD + ASR path")
    _common(asr)
    asr.add_argument("file", help="audio file (WAV or anything FFmpeg reads)")
    asr.add_argument("--server", metavar="URL", help="ws://host:port of a running asr-serve (default: local)")
    asr.add_argument("--token-env", default=TOKEN_ENV, metavar="NAME",
                     help="environment variable holding the asr-serve token")
    asr.add_argument("--model", help="ASR model name or folder (default: mic.asr.model, else the "
                                      "language's packaged default: tiny.en, base)")
    asr.add_argument("--language", help="Whisper language code or auto (default: mic.asr.language, en)")

    serve = sub.add_parser("asr-serve", help="serve speech recognition over WebSocket (Opus in, text out)")
    _common(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=port_number, default=8766, help="port to listen on (0: any free port)")
    serve.add_argument("--token-env", default=TOKEN_ENV, metavar="NAME",
                       help="environment variable holding the shared token (8+ characters)")
    serve.add_argument("--model", help="ASR model name or folder (default: mic.asr.model, else the "
                                        "language's packaged default: tiny.en, base)")
    serve.add_argument("--language", help="Whisper language code or auto (default: mic.asr.language, en)")

    check = sub.add_parser("check", help="validate the config and every scene")
    _common(check)

    snap = sub.add_parser("snapshot", help="render one frame of a scene to a PNG")
    _common(snap)
    snap.add_argument("--scene", help="scene name or path")
    snap.add_argument("--size", help="canvas size WxH")
    snap.add_argument("-o", "--output", required=True, help="PNG file to write")
    snap.add_argument("--caption", default="Hello! This is what a caption looks like on air.",
                      help="caption text to show in the snapshot ('' for none)")
    bw = sub.add_parser("bandwidth", help="up/downlink each link needs (and, with --measure, uses)")
    _common(bw)
    bw.add_argument("--measure", type=float, metavar="SECONDS",
                    help="also measure a running broadcaster's links over SECONDS (from its /metrics)")

    inst = sub.add_parser("install-service", help="write the systemd unit (see README)")
    _common(inst)
    inst.add_argument("--channel", help="write the templated unit broadcaster@CHANNEL")
    inst.add_argument("--unit-dir", help="where to write the unit (default /etc/systemd/system)")
    inst.add_argument("--force", action="store_true", help="overwrite an existing unit")
    return parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", help="config file (default: the packaged config.yaml)")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            _export_credentials()
        config = load_config(args.config)
        configure_logging(args.log_level or config.logging.level, config.logging.format)
        install_exception_hooks()
        commands = {"run": cmd_run, "check": cmd_check, "snapshot": cmd_snapshot, "say": cmd_say,
                    "bandwidth": cmd_bandwidth, "install-service": cmd_install_service,
                    "asr": cmd_asr, "asr-serve": cmd_asr_serve}
        return commands[args.command](args, config)
    except BroadcasterError as exc:
        print(f"broadcaster: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130


def _export_credentials() -> None:
    """systemd LoadCredential= files -> the variables the LLM and chat clients read."""
    from broadcaster.credentials import export_credentials
    export_credentials()      # an unreadable credential is a CredentialError (one line, exit 1)


def _scene(config: Config, name: str | None, size: str | None = None, fps: int | None = None) -> Scene:
    path = scene_path(config.scenes_dir, name or config.scene)
    if not path.is_file():
        available = ", ".join(p.stem for p in list_scenes(config.scenes_dir)) or "none"
        raise ConfigError(str(path), "scene", f"scene not found (available in {config.scenes_dir}: {available})")
    scene = load_scene(path)
    w, h = parse_size(size) if size else (None, None)
    if fps is not None and not 1 <= fps <= 60:
        raise ConfigError("command line", "--fps", f"must be between 1 and 60, got {fps}")
    if w or fps:
        scene = scene.with_canvas(w, h, fps)
    return scene


def cmd_check(args, config: Config) -> int:
    from broadcaster.mic.host import mic_settings
    mic_settings(config.features.get("mic"), config.source)     # the mic: section is valid
    from broadcaster.ratecontrol.settings import ratecontrol_settings
    ratecontrol_settings(config.features.get("ratecontrol"), config.source, config.video,
                         config.audio, config.base_dir)
    checked = [config.source]
    scenes = list_scenes(config.scenes_dir)
    if not scenes:
        raise ConfigError(str(config.scenes_dir), "scenes_dir", "holds no scene files (*.yaml)")
    from broadcaster.dialogue.live import validate_live
    for path in scenes:
        validate_live(config, load_scene(path))      # voice, responder, chat, script, overlay
        checked.append(str(path))
    _scene(config, None)   # the configured scene must exist
    print("ok: " + ", ".join(checked))
    return 0


def cmd_snapshot(args, config: Config) -> int:
    import numpy as np
    from PIL import Image

    from broadcaster.avatar.factory import build_anchor
    from broadcaster.render.compose import Compositor
    from broadcaster.render.yuv import yuv420_to_rgb

    scene = _scene(config, args.scene, args.size)
    compositor = Compositor(scene, build_anchor(scene))
    frame = compositor.compose(0, np.zeros(2400, np.float32), args.caption or None)
    rgb = yuv420_to_rgb(frame, scene.canvas.width, scene.canvas.height)
    out = Path(args.output)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(out, format="PNG")
    except (OSError, ValueError) as exc:
        raise BroadcasterError(f"cannot write {out}: {exc}") from None
    print(f"wrote {out} ({scene.canvas.width}x{scene.canvas.height}, scene {scene.name})")
    return 0


def apply_run_overrides(args, config: Config) -> Config:
    """Command-line values override the config file (bitrate ceiling, output, control port)."""
    import os
    from dataclasses import replace

    from broadcaster.config import apply_stream_key

    if getattr(args, "bitrate", None) is not None:
        if not 100 <= args.bitrate <= 50000:
            raise ConfigError("command line", "--bitrate", f"must be 100..50000 kbit/s, got {args.bitrate}")
        floor = min(config.video.min_bitrate_kbps, args.bitrate)
        config = replace(config, video=replace(config.video, bitrate_kbps=args.bitrate, min_bitrate_kbps=floor))
    if getattr(args, "output", None):
        url = apply_stream_key(args.output, os.environ.get("BROADCASTER_STREAM_KEY"), "command line")
        check_output_url(url, "command line", "--output")
        config = replace(config, output=replace(config.output, url=url))
    if getattr(args, "control_port", None) is not None:
        config = replace(config, control=replace(config.control, port=args.control_port, enabled=True))
    return config


def cmd_run(args, config: Config) -> int:
    from broadcaster.station import Station

    config = apply_run_overrides(args, config)
    scene = _scene(config, args.scene, args.size, args.fps)
    canvas = {}
    if args.size:
        canvas["width"], canvas["height"] = parse_size(args.size)
    if args.fps:
        canvas["fps"] = args.fps
    from broadcaster.service.status_view import status_view_enabled
    responder = None if args.responder in (None, "script") else args.responder
    station = Station(config, scene, config_path=args.config, scene_override=args.scene,
                      canvas_override=canvas, duration_s=args.duration, responder=responder,
                      mic=args.mic, answer_chat=args.responder != "script",
                      config_overrides=lambda reloaded: apply_run_overrides(args, reloaded),
                      interactive=status_view_enabled(sys.stdin))
    status = station.run()
    if status == 0 and station.broadcast.output_path is not None:
        print(f"recorded {station.broadcast.output_path}")
    return status


def cmd_say(args, config: Config) -> int:
    import urllib.error
    import urllib.request

    from broadcaster.service.access import WILDCARD_HOSTS

    port = args.control_port if args.control_port is not None else config.control.port
    host = "127.0.0.1" if config.control.host in WILDCARD_HOSTS else config.control.host
    url = f"http://{host}:{port}/say"
    body = json.dumps({"text": args.text, "interrupt": args.interrupt}).encode()
    headers = {"Content-Type": "application/json"}
    if config.control.token:
        headers["Authorization"] = f"Bearer {config.control.token}"
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            reply = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("detail", exc.reason)
        raise BroadcasterError(f"the broadcaster refused the line ({exc.code}): {detail}") from None
    except OSError as exc:
        raise BroadcasterError(f"no broadcaster answering on {config.control.host}:{port} "
                               f"({getattr(exc, 'reason', exc)}); is it running? (--control-port)") from None
    print("queued" + (" (interrupting)" if reply.get("interrupt") else ""))
    return 0


def _token_from_env(name: str, option: str) -> str:
    import os

    from broadcaster.redact import register_secret
    if not name.replace("_", "").isalnum() or name[0].isdigit():
        raise ConfigError("command line", option, f"must be an environment variable name, got {name!r}")
    token = os.environ.get(name)
    if not token:
        raise ConfigError("command line", option, f"${name} is not set (the shared asr-serve token)")
    register_secret(token)
    return token


def cmd_asr(args, config: Config) -> int:
    from broadcaster.asr.run import transcribe_file_main

    if not Path(args.file).is_file():
        raise ConfigError("command line", "FILE", f"{args.file!r}: no such file")
    token = None
    if args.server is not None:
        if not args.server.startswith(("ws://", "wss://")):
            raise ConfigError("command line", "--server", f"must be a ws:// or wss:// URL, got "
                              f"{redact(args.server)!r}")
        token = _token_from_env(args.token_env, "--token-env")
    mic = _asr_settings(args, config)
    return transcribe_file_main(args.file, args.server, token=token, model=mic.model, language=mic.language,
                                turn_end=mic.turn_end, vad_config=mic.vad)


def cmd_asr_serve(args, config: Config) -> int:
    from broadcaster.asr.run import serve_main

    if not 0 <= args.port <= 65535:
        raise ConfigError("command line", "--port", f"must be 0..65535, got {args.port}")
    token = _token_from_env(args.token_env, "--token-env")
    if len(token) < 8:
        raise ConfigError("command line", "--token-env", f"${args.token_env} must hold at least 8 characters")
    mic = _asr_settings(args, config)
    return serve_main(args.host, args.port, token, mic.model, mic.language, mic.turn_end, mic.vad)


def _asr_settings(args, config: Config):
    """The config's mic settings (ASR model, language, VAD, turn end) with --model and
    --language applied, checked as the config's are."""
    from broadcaster.mic.host import mic_settings
    data = dict(config.features.get("mic") or {})
    asr = dict(data.get("asr") or {})
    asr.update({name: getattr(args, name) for name in ("model", "language") if getattr(args, name)})
    data["asr"] = asr
    try:
        return mic_settings(data, config.source)
    except ConfigError as exc:
        if exc.key in ("mic.asr.model", "mic.asr.language") and (args.model or args.language):
            raise ConfigError("command line", f"--{exc.key.rsplit('.', 1)[1]}", exc.message) from None
        raise


def cmd_bandwidth(args, config: Config) -> int:
    from broadcaster.service.bandwidth import bandwidth_main

    scene = _scene(config, None)
    view = {
        "video": {"bitrate_kbps": config.video.bitrate_kbps, "fps": scene.canvas.fps},
        "audio": {"bitrate_kbps": config.audio.bitrate_kbps},
        "output": {"url": config.output.url},
        "control": {"host": config.control.host, "port": config.control.port},
    }
    for name in ("asr", "llm", "tts"):
        if isinstance(config.features.get(name), dict):
            view[name] = config.features[name]
    if isinstance(scene.features.get("tts"), dict):   # the scene's voice wins, as on air
        view["tts"] = scene.features["tts"]
    return bandwidth_main(view, args.measure)


def cmd_install_service(args, config: Config) -> int:
    from broadcaster.service.systemd_unit import install_service_main

    kwargs = {"channel": args.channel, "force": args.force}
    if args.unit_dir:
        kwargs["unit_dir"] = args.unit_dir
    return install_service_main(**kwargs)


if __name__ == "__main__":
    sys.exit(main())
