"""The host's microphone on air: mic -> VAD -> ASR -> the conversation, with barge-in.

    mic source ─> EchoGate ─> MicPipeline (local Whisper) or RemoteMicPipeline (asr-serve)
        │ (optional)                │ on_onset (capture thread)      │ final transcript
        └─> HostVoice ─> mixer      └─> Conversation.interrupt()     └─> Conversation.host_said()

Why each piece is here:
- Barge-in runs on the capture thread inside the VAD callback: it only reads two flags and
  calls Conversation.interrupt() (a mixer cut + avatar reset), so the anchor falls silent in
  the next frame slot the media loop pulls.
- The anchor's voice never reaches the mic path in software: the mic frames come only from
  the capture source; the broadcast mix is never fed back. With open speakers (echo:
  speakers) the mic is closed (frames zeroed) while the anchor is audible, because VAD alone
  cannot tell the anchor's echo from the host (half duplex; use headphones for barge-in).
- A mic that fails while on air is reopened with backoff; the broadcast never stops for it.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from broadcaster.asr.protocol import TOKEN_ENV
from broadcaster.asr.switchable import AsrChoice, SwitchableAsr
from broadcaster.asr.turn_end import TurnEndConfig
from broadcaster.backoff import Backoff
from broadcaster.errors import ConfigError
from broadcaster.mic.capture import MicSource
from broadcaster.mic.vad import WINDOW, SpeechOnset, VadConfig
from broadcaster.redact import redact, redact_url
from broadcaster.schema import Section
from broadcaster.stages import Reload, Tick

log = logging.getLogger(__name__)

ECHO_MODES = ("headphones", "speakers")
TURN_END_MODES = ("transcript", "silence")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class MicSettings:
    enabled: bool = False
    device: str | int | None = None      # name, index, audio file, '-' (stdin), None = default
    host_name: str = "Host"
    vad: VadConfig = field(default_factory=VadConfig)
    model: str | None = None              # ASR model name or folder; None = the language's default
    language: str = "en"                  # Whisper language code or 'auto'
    turn_end: TurnEndConfig | None = field(default_factory=lambda: default_turn_end())  # None: silence alone
    server: str | None = None             # ws(s)://host:port of a remote asr-serve
    token_env: str = TOKEN_ENV
    mix_into_broadcast: bool = False
    host_gain: float = 1.0
    duck: float = 0.4                     # bed gain while the host's voice is mixed in
    echo: str = "headphones"
    source: str = "config"


def mic_settings(data, source: str, key: str = "mic") -> MicSettings:
    """The `mic:` section of config.yaml, validated (errors name the file and key)."""
    sec = Section(data, source, key)
    sec.allow_only(("enabled", "device", "host_name", "vad", "asr", "turn_end", "mix_into_broadcast",
                    "host_gain", "duck", "echo"))
    device = sec.raw("device")
    if device is not None and (isinstance(device, bool) or not isinstance(device, (str, int))):
        raise sec.error("device", "must be a device name, an index, an audio file or '-'")
    if isinstance(device, str) and not device.strip():
        raise sec.error("device", "must not be empty")
    vad = sec.section("vad")
    vad.allow_only(("threshold", "min_silence_ms", "min_speech_ms", "onset_min_ms", "speech_pad_ms"))
    vad_config = VadConfig(
        threshold=vad.number("threshold", 0.5, minimum=0.05, maximum=0.95),
        min_silence_ms=vad.number("min_silence_ms", 500, minimum=50, maximum=5000),
        min_speech_ms=vad.number("min_speech_ms", 250, minimum=0, maximum=5000),
        onset_min_ms=vad.number("onset_min_ms", 0, minimum=0, maximum=1000),
        speech_pad_ms=vad.number("speech_pad_ms", 200, minimum=0, maximum=1000))
    asr = sec.section("asr")
    asr.allow_only(("model", "language", "server", "token_env"))
    language, model = asr_model_settings(asr)
    turn_end = turn_end_settings(sec.section("turn_end"), vad_config.min_silence_ms)
    server = asr.text("server") if asr.has("server") else None
    if server is not None and not server.startswith(("ws://", "wss://")):
        raise asr.error("server", f"must be a ws:// or wss:// URL of `broadcaster asr-serve`, "
                                  f"got {redact_url(server)!r}")
    token_env = asr.text("token_env", TOKEN_ENV)
    if not _ENV_NAME.match(token_env):
        raise asr.error("token_env", f"must be an environment variable name, got {token_env!r}")
    return MicSettings(
        enabled=sec.boolean("enabled", False), device=device,
        host_name=sec.text("host_name", "Host"), vad=vad_config,
        model=model, language=language, turn_end=turn_end, server=server, token_env=token_env,
        mix_into_broadcast=sec.boolean("mix_into_broadcast", False),
        host_gain=sec.number("host_gain", 1.0, minimum=0, maximum=4),
        duck=sec.number("duck", 0.4, minimum=0, maximum=1),
        echo=sec.text("echo", "headphones", choices=ECHO_MODES), source=source)


def asr_model_settings(asr: Section) -> tuple[str, str | None]:
    """(language, model) of a `mic.asr` section: a Whisper code or auto, and a packaged model
    name or model folder that can transcribe it (None: the language's default)."""
    from broadcaster.asr.models import MULTILINGUAL_DEFAULT, check_language, check_model_spec
    language = asr.text("language", "en")
    try:
        check_language(language)
    except ValueError as exc:
        raise asr.error("language", str(exc)) from None
    model = asr.text("model") if asr.has("model") else None
    if model is not None:
        try:
            check_model_spec(model)
        except ValueError as exc:
            raise asr.error("model", str(exc)) from None
        if model.endswith(".en") and language not in ("en", "auto"):
            raise asr.error("model", f"{model} is English-only and {asr.path('language')} is {language!r}: "
                                     f"use a multilingual model ({MULTILINGUAL_DEFAULT}) or leave model unset")
    return language, model


def turn_end_settings(sec: Section, min_silence_ms: float) -> TurnEndConfig | None:
    """`mic.turn_end`: mode transcript (the pause's words set the wait) or silence (the VAD's
    min_silence_ms alone); None for silence. model: auto (the packaged Smart Turn model when
    installed), smart-turn (required), none, or the path of a Smart Turn v3 ONNX file."""
    sec.allow_only(("mode", "complete_ms", "hold_ms", "model", "threshold"))
    mode = sec.text("mode", "transcript", choices=TURN_END_MODES)
    complete = sec.number("complete_ms", min(200.0, min_silence_ms), minimum=50, maximum=min_silence_ms)
    hold = sec.number("hold_ms", max(1000.0, min_silence_ms), minimum=min_silence_ms, maximum=5000)
    threshold = sec.number("threshold", 0.7, minimum=0.05, maximum=0.95)
    model = turn_model_path(sec)
    if mode == "silence":
        return None
    return TurnEndConfig(complete_ms=complete, unclear_ms=min_silence_ms, hold_ms=hold, model=model,
                         threshold=threshold)


def default_turn_end() -> TurnEndConfig:
    """mic.turn_end left unset: the transcript mode, with the packaged turn model if installed."""
    from broadcaster.asr.smart_turn import packaged_model_path
    return TurnEndConfig(model=packaged_model_path())


def turn_model_path(sec: Section) -> Path | None:
    """The Smart Turn model file `mic.turn_end.model` names (None: pitch alone)."""
    from broadcaster.asr.smart_turn import INSTALL_HINT, packaged_model_path
    spec = sec.text("model", "auto")
    if spec == "none":
        return None
    if spec in ("auto", "smart-turn"):
        path = packaged_model_path()
        if path is None and spec == "smart-turn":
            raise sec.error("model", f"the packaged Smart Turn model is not installed: {INSTALL_HINT}")
        return path
    path = Path(spec).expanduser()
    if not path.is_file():
        raise sec.error("model", f"{spec!r} is not a file; use auto, smart-turn, none or the path "
                                 "of a Smart Turn v3 .onnx file")
    return path


def with_mic_override(settings: MicSettings, spec: str | None) -> MicSettings:
    """`broadcaster run --mic DEVICE_OR_FILE` turns the mic on with that input."""
    if spec is None:
        return settings
    from dataclasses import replace
    return replace(settings, enabled=True, device=spec, source="command line")


def open_source(settings: MicSettings):
    """The capture source; a ConfigError (exit 2) naming what is wrong and listing devices."""
    from broadcaster.mic.capture import MicDeviceNotFound, open_mic_source
    key = "--mic" if settings.source == "command line" else "mic.device"
    device = settings.device
    try:
        return open_mic_source(device, realtime_files=True)
    except MicDeviceNotFound as exc:
        message = str(exc)
        if isinstance(device, str) and (os.sep in device or os.path.splitext(device)[1]):
            message = f"{device!r} is neither an existing audio file nor an input device; {message}"
        raise ConfigError(settings.source, key, message) from None
    except ValueError as exc:
        raise ConfigError(settings.source, key, str(exc)) from None
    except OSError as exc:    # PortAudio missing or broken
        raise ConfigError(settings.source, key, f"cannot use the sound system: {exc}") from None


def clean_transcript(text: str) -> str:
    """Whisper's text without non-speech tags ('[BLANK_AUDIO]', '(music)'); '' if nothing is left."""
    text = re.sub(r"\[[^\]]*\]|\([^)]*\)", " ", text)
    text = " ".join(text.split())
    return text if re.search(r"\w", text) else ""


class EchoGate:
    """Pure policy for open speakers: is the mic closed now? (headphones: never)."""

    def __init__(self, mode: str, tail_s: float = 0.3):
        self.mode, self.tail_s = mode, tail_s

    def closed(self, anchor_audible: bool, last_speech_at: float | None, now: float) -> bool:
        if self.mode != "speakers":
            return False
        return anchor_audible or (last_speech_at is not None and now - last_speech_at < self.tail_s)


class HostVoice:
    """16 kHz mono mic frames -> 48 kHz stereo into the mixer's host input (capture thread)."""

    def __init__(self, mixer, rate: int = 48000):
        import av
        self.mixer, self.rate = mixer, rate
        # resampled as mono then copied to both channels (swresample's mono->stereo is -3 dB)
        self._rs = av.AudioResampler(format="flt", layout="mono", rate=rate)
        self._pts = 0

    def push(self, frame: np.ndarray) -> None:
        import av
        f = av.AudioFrame.from_ndarray(np.ascontiguousarray(frame, np.float32).reshape(1, -1),
                                       format="flt", layout="mono")
        f.sample_rate, f.pts = 16000, self._pts
        self._pts += len(frame)
        for out in self._rs.resample(f):
            mono = out.to_ndarray().reshape(-1)
            self.mixer.push_host(np.repeat(mono[:, None], 2, axis=1))


class TappedSource:
    """A capture source whose frames pass through tap(frame) -> frame; notes its end/error."""

    def __init__(self, source: MicSource, tap: Callable[[np.ndarray], np.ndarray]):
        self.source, self.tap = source, tap
        self.ended = threading.Event()
        self.error: BaseException | None = None

    def frames(self) -> Iterator[np.ndarray]:
        try:
            for frame in self.source.frames():
                yield self.tap(frame)
        except Exception as exc:
            self.error = exc
            raise
        finally:
            self.ended.set()

    def close(self) -> None:
        self.source.close()

    @property
    def finite(self) -> bool:
        return self.source.finite


class OnsetOffsets:
    """Per utterance, the wall-clock offset of its VAD stream time, kept from its onset until
    its final transcript. An utterance whose final never comes (a failed or remote ASR) must
    not stay forever: only the last `keep` utterances are held. Noted from the capture
    thread, taken from the ASR's."""

    def __init__(self, keep: int = 32):
        self.keep = keep
        self._offsets: dict[int, float] = {}
        self._lock = threading.Lock()

    def note(self, utt_id: int, offset: float) -> None:
        with self._lock:
            self._offsets[utt_id] = offset
            while len(self._offsets) > self.keep:
                del self._offsets[next(iter(self._offsets))]    # the oldest

    def take(self, utt_id: int) -> float | None:
        with self._lock:
            return self._offsets.pop(utt_id, None)

    def clear(self) -> None:
        with self._lock:
            self._offsets.clear()

    def __len__(self) -> int:
        return len(self._offsets)


class HostMic:
    """A station stage (with the station's live side): the host's voice into the conversation."""

    name = "mic"

    def __init__(self, station, settings: MicSettings, backoff: Backoff | None = None,
                 opener: Callable[[MicSettings], object] = open_source):
        if station.live is None:
            raise ConfigError(settings.source, "mic", "the microphone needs the live side (control loop)")
        self.station, self.settings, self.opener = station, settings, opener
        self.backoff = backoff or Backoff(1.0, 2.0, 30.0)
        self.conversation = station.live.conversation
        self.mixer = station.broadcast.mixer
        self.metrics = station.runtime.metrics
        self.gate = EchoGate(settings.echo)
        self._source = opener(settings)          # a missing device fails here, before air
        self.token = None
        self.asr = None
        if settings.server:
            self.token = os.environ.get(settings.token_env)
            if not self.token:
                raise ConfigError(settings.source, "mic.asr.token_env",
                                  f"${settings.token_env} is not set (the asr-serve token)")
        else:
            from broadcaster.asr.whisper import WhisperAsr
            try:
                model = WhisperAsr(settings.model, language=settings.language)
            except (ValueError, RuntimeError) as exc:
                raise ConfigError(settings.source, "mic.asr.model", str(exc)) from None
            self.asr = SwitchableAsr(model, AsrChoice(settings.language, settings.model))
        self._switching: threading.Thread | None = None
        self.voice = None
        if settings.mix_into_broadcast:
            self.mixer.enable_host(settings.host_gain, settings.duck)
            self.voice = HostVoice(self.mixer, station.config.audio.sample_rate)
        self.state = "idle"
        self.muted = False
        self.onsets: deque[dict] = deque(maxlen=50)
        self.finals: deque[dict] = deque(maxlen=50)
        self.frames_in = 0
        self.frames_gated = 0
        self.restarts = 0
        self._utt_offset = OnsetOffsets()
        self._floor_since: float | None = None
        self._pipeline = None
        self._uplink_seen = 0
        self._tick: tuple[int, float] = (0, time.monotonic())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="host-mic", daemon=True)
        self.conversation.add_floor_holder(self)
        station.events.tick.subscribe(self._on_tick)
        station.events.reload.subscribe(self._on_reload)
        station.control.app.router.add_get("/mic", self._get_mic)
        station.add_stage(self)          # added after the live side, so it stops first

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self._stop_pipeline()

    def _stop_pipeline(self) -> None:
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            try:
                pipeline.stop()
            except Exception as exc:  # noqa: BLE001 - shutting the mic down
                log.debug("mic: stopping the pipeline: %s", exc)

    def _make_pipeline(self, tapped: TappedSource):
        if self.settings.server:
            from broadcaster.asr.remote_pipeline import RemoteMicPipeline
            return RemoteMicPipeline(tapped, self.settings.server, self.token, self._on_transcript,
                                     loop=self.station.control.loop, on_onset=self._on_onset,
                                     vad_config=self.settings.vad)
        from broadcaster.asr.streaming import MicPipeline
        return MicPipeline(tapped, self.asr, self._on_transcript, on_onset=self._on_onset,
                           vad_config=self.settings.vad, turn_end=self.settings.turn_end)

    def _supervise(self) -> None:
        """Run the pipeline; when the input fails, reopen it with backoff (never raise)."""
        failures = 0
        source, self._source = self._source, None
        while not self._stop.is_set():
            try:
                if source is None:
                    source = self.opener(self.settings)
                tapped = TappedSource(source, self._on_frame)
                self._utt_offset.clear()
                self._pipeline = self._make_pipeline(tapped)
                self._pipeline.start()
            except Exception as exc:  # noqa: BLE001 - the broadcast carries on without the mic
                failures += 1
                self._fail(source, exc, failures)
                source = None
                continue
            self.state = "listening"
            log.info("mic: listening to %s (%s ASR)", self._shown(),
                     f"remote {redact_url(self.settings.server)}" if self.settings.server else "local")
            while not tapped.ended.wait(0.5) and not self._stop.is_set():
                self._count_uplink()
            self._count_uplink()
            if self._stop.is_set():
                return
            error = tapped.error or getattr(self._pipeline, "error", None)
            client = getattr(self._pipeline, "client", None)
            client_error = getattr(client, "error", None)
            if client_error is not None:
                self.state = "failed"
                log.error("mic: the asr server refused us (%s); the broadcast goes on without the mic",
                          redact(str(client_error)))
                return
            if error is None and tapped.finite:
                self.state = "ended"
                log.info("mic: input %s ended", self._shown())
                return       # the pipeline keeps running until close() to deliver the last text
            failures += 1
            self._stop_pipeline()
            self._fail(None, error or RuntimeError("the input stopped"), failures)
            source = None

    def _fail(self, source, exc: BaseException, failures: int) -> None:
        self.state = "retrying"
        self.restarts += 1
        delay = self.backoff.nominal(failures - 1)
        log.warning("mic: %s failed (%s); retrying in %.1f s, the broadcast goes on",
                    self._shown(), redact(str(exc)) or type(exc).__name__, delay)
        if source is not None:
            try:
                source.close()
            except Exception:  # noqa: BLE001
                pass
        self._stop.wait(delay)

    def _shown(self) -> str:
        d = self.settings.device
        return "the default input" if d is None else ("stdin" if d == "-" else repr(d))

    def _count_uplink(self) -> None:
        client = getattr(self._pipeline, "client", None)
        if client is None:
            return
        sent = client.wire_bytes_sent
        if sent > self._uplink_seen:
            self.metrics.link_bytes("asr_uplink", sent - self._uplink_seen)
        self._uplink_seen = sent

    def _on_reload(self, event: Reload) -> None:
        """Config and scene re-read: a local mic whose language (the scene's voice, unless the
        config names one) or model changed loads the new model in the background and
        switches to it between two decodes; until then, and if it cannot load, the old one
        goes on listening."""
        if self.asr is None:
            return
        try:
            base = mic_settings(event.config.features.get("mic"), event.config.source)
        except ConfigError as exc:
            log.warning("reload: the mic keeps its ASR model: %s", exc)
            return
        wanted = with_scene_language(base, event.config, event.scene)
        choice = AsrChoice(wanted.language, wanted.model)
        if choice == self.asr.choice:
            return
        if self._switching is not None and self._switching.is_alive():
            log.warning("reload: the mic is still loading its last model; %s/%s not loaded",
                        choice.language, choice.model or "default")
            return
        self._switching = threading.Thread(target=self._switch_asr, args=(choice,),
                                           name="mic-asr-switch", daemon=True)
        self._switching.start()

    def _switch_asr(self, choice: AsrChoice) -> None:
        from broadcaster.asr.whisper import WhisperAsr
        started = time.monotonic()
        try:
            model = WhisperAsr(choice.model, language=choice.language)
        except (ValueError, RuntimeError, OSError) as exc:
            log.warning("reload: the mic keeps listening in %r: cannot load the ASR model for %r: %s",
                        self.asr.choice.language, choice.language, exc)
            return
        if self._stop.is_set():
            return
        self.asr.switch(model, choice)
        from dataclasses import replace
        self.settings = replace(self.settings, language=choice.language, model=choice.model)
        log.info("reload: the mic now listens in %r (model %s, loaded in %.1f s)", choice.language,
                 choice.model or "the language's default", time.monotonic() - started)

    def _on_tick(self, tick: Tick) -> None:
        self._tick = (tick.index, time.monotonic())     # pts <-> monotonic, for onset timing

    # -- capture thread ----------------------------------------------------------------
    def anchor_audible(self) -> bool:
        return not self.mixer.idle()

    def set_muted(self, muted: bool) -> None:
        """Muted, the mic feeds silence: nothing is heard, transcribed or put on air."""
        self.muted = muted
        log.info("mic: %s", "muted" if muted else "open")

    def _on_frame(self, frame: np.ndarray) -> np.ndarray:
        self.frames_in += 1
        if self.muted or self.gate.closed(self.anchor_audible(), self.mixer.last_speech_at,
                                          time.monotonic()):
            self.frames_gated += 1
            frame = np.zeros_like(frame)
        if self.voice is not None:
            self.voice.push(frame)
        return frame

    def _on_onset(self, onset: SpeechOnset) -> None:
        """VAD onset (capture thread): barge in first, bookkeeping after."""
        speaking = self.anchor_audible() or self.conversation.current is not None
        if speaking:
            self.conversation.interrupt()
        now = time.monotonic()
        frame_index = self.station.broadcast.frame_index
        self._floor_since = now
        n, at = self._tick      # slot n was pulled just before `at` (so pts_s errs early)
        fps = self.station.broadcast.fps
        # the stream time of the window's last sample is when the onset could first be seen
        if not self.settings.server:     # a remote ASR's transcripts carry their own timing
            self._utt_offset.note(onset.utt_id, onset.wall - (onset.t + WINDOW / 16000))
        record = {"utt": onset.utt_id, "t": round(onset.t, 3), "barge_in": speaking,
                  "frame_index": frame_index, "pts_s": round(n / fps + (onset.wall - at), 4),
                  "wall": onset.wall}
        self.onsets.append(record)
        log.info("mic: host started speaking (utterance %d, frame %d)%s", onset.utt_id, frame_index,
                 ": the anchor stops" if speaking else "")

    def floor_held(self) -> bool:
        """The host is mid-utterance: the anchor does not start a new turn over them."""
        since, pipeline = self._floor_since, self._pipeline
        if since is None or pipeline is None:
            return False
        if not pipeline.segmenter.in_speech or time.monotonic() - since > 30.0:
            self._floor_since = None
            return False
        return True

    # -- ASR thread / loop -------------------------------------------------------------
    def _on_transcript(self, tr) -> None:
        self.metrics.observe_stage("asr", max(0.0, tr.latency_s))
        if tr.kind != "final":
            log.debug("mic: partial (utterance %d): %s", tr.utt_id, redact(tr.text))
            return
        text = clean_transcript(tr.text)
        now = time.monotonic()
        offset = self._utt_offset.take(tr.utt_id)
        lag = None
        if offset is not None and tr.speech_end is not None:
            lag = now - (offset + tr.speech_end)
        self.finals.append({"utt": tr.utt_id, "text": text, "raw": tr.text, "at": now,
                            "asr_ms": round(tr.latency_s * 1000, 1),
                            "speech_end_to_text_ms": None if lag is None else round(lag * 1000, 1)})
        if not text:
            log.info("mic: utterance %d gave no words (%r); ignored", tr.utt_id, tr.text)
            return
        self.conversation.host_said(text, speaker=self.settings.host_name)
        log.info("mic: host said (utterance %d, text %s ms after the speech ended, asr %.0f ms): %s",
                 tr.utt_id, "?" if lag is None else f"{lag * 1000:.0f}", tr.latency_s * 1000, redact(text))

    def _host_voice_stats(self) -> dict | None:
        if self.voice is None:
            return None
        return {"dropped_s": round(self.mixer.host_dropped / self.mixer.sample_rate, 3),
                "underruns": self.mixer.host_underruns,
                "jitter_buffer_ms": round(self.mixer.host_prime_s * 1000)}

    async def _get_mic(self, request):
        from aiohttp import web
        return web.json_response({
            "state": self.state, "muted": self.muted, "input": self._shown(), "asr": "remote" if self.settings.server else "local",
            "language": self.settings.language,
            "echo": self.settings.echo, "mix_into_broadcast": self.settings.mix_into_broadcast,
            "frames_in": self.frames_in, "frames_gated": self.frames_gated, "restarts": self.restarts,
            "host_voice": self._host_voice_stats(),
            "fps": self.station.broadcast.fps, "onsets": list(self.onsets), "finals": list(self.finals)})


def attach_host_mic(station, mic_override: str | None = None) -> HostMic | None:
    """Read the `mic:` config (plus --mic); the mic stage when enabled (it adds itself to the
    station), else None."""
    config = station.config
    settings = with_mic_override(mic_settings(config.features.get("mic"), config.source), mic_override)
    if not settings.enabled:
        return None
    return HostMic(station, with_scene_language(settings, config, station.broadcast.scene))


def with_scene_language(settings: MicSettings, config, scene) -> MicSettings:
    """A local mic whose config names neither `mic.asr.language` nor a model listens in the
    language the scene's voice speaks: a Chinese scene's host is heard in Chinese."""
    asr = ((config.features.get("mic") or {}).get("asr") or {})
    if settings.server or not isinstance(asr, dict) or "language" in asr or settings.model:
        return settings
    from broadcaster.tts.settings import voice_settings
    language = voice_settings(config, scene).language
    if not language or language == settings.language:
        return settings
    from broadcaster.asr.models import check_language
    try:
        check_language(language)
    except ValueError:
        return settings       # a language Whisper has no code for: keep the configured one
    from dataclasses import replace
    log.info("mic: listening in %r, the language of the scene's voice (set mic.asr.language "
             "to choose another)", language)
    return replace(settings, language=language)
