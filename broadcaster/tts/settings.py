"""Builds the anchor's voice from the scene (or config) `tts:` section.

    tts:
      engines:                      # tried in order; a failing engine falls back to the next
        - {engine: openai_speech, url: "http://gpu-box:8880/v1", model: tts-1, voice: alloy}
        - piper                     # the packaged en_US voice (offline)
        - {engine: piper, voice: voices/en_GB-alan-medium.onnx}
        - {engine: edge, voice: zh-CN-XiaoxiaoNeural, rate: "+0%"}
      level_dbfs: -20               # loudness every engine is normalised to (gated RMS)
      first_fragment_words: 6       # speak a long first sentence in two parts (0: never)
      first_audio_timeout_s: 2.0    # a remote engine slower than this to its first audio
                                    # hands the sentence to the next engine
      retry_after_s: 60             # how long a failed engine is left out before it is tried again

Every remote engine takes url, sample_rate (of raw PCM answers) and its own
first_audio_timeout_s and stall_timeout_s (longest pause inside a streamed answer); those with
an API key take api_key_env (the environment variable holding it). Then:
  openai_speech: url is the API base (http://host:port/v1); model, voice, response_format
                 (pcm | wav), speed, instructions; key from OPENAI_API_KEY by default.
  fish_speech:   url is the server (http://host:8080); speaks with the scene's `voice:`
                 (reference clip + transcript, see voice.py) or a reference_id stored on the
                 server; chunk_length, temperature, top_p, seed; key from FISH_SPEECH_API_KEY.
  gpt_sovits:    url is the api_v2 server (http://host:9880); speaks with the scene's voice:
                 ref_audio_path (the clip's path on the server; default: its path here),
                 text_lang and prompt_lang (default: the voice's language, else en),
                 streaming_mode (true, or 1-3), text_split_method, speed_factor, and the
                 voice switch gpt_weights / sovits_weights (paths on the server).
  cosyvoice:     url is the FastAPI server (http://host:50000); mode zero_shot (the scene's
                 voice and transcript, the default), cross_lingual (the voice only) or sft
                 (spk_id); sample_rate 22050 (CosyVoice-300M) or 24000 (CosyVoice2).
                 Its wire format is not verified against the server code (see cosyvoice.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from broadcaster.schema import Section
from broadcaster.tts.voice import VoiceReference

log = logging.getLogger(__name__)
ENGINES = ("piper", "edge", "openai_speech", "fish_speech", "gpt_sovits", "cosyvoice")
REMOTE_ENGINES = ("openai_speech", "fish_speech", "gpt_sovits", "cosyvoice")
_LOCAL_KEYS = ("engine", "voice", "rate", "volume", "pitch", "length_scale", "speaker_id")
# The rate each remote engine's PCM arrives at unless its sample_rate says otherwise.
REMOTE_PCM_RATES = {"openai_speech": 24_000, "fish_speech": 44_100, "gpt_sovits": 32_000,
                    "cosyvoice": 22_050}
_COMMON_REMOTE_KEYS = ("engine", "url", "sample_rate", "first_audio_timeout_s",
                       "stall_timeout_s")
_REMOTE_KEYS = {"openai_speech": ("model", "voice", "response_format", "speed", "instructions",
                                  "api_key_env"),
                "fish_speech": ("api_key_env", "reference_id", "chunk_length", "temperature", "top_p", "seed"),
                "gpt_sovits": ("ref_audio_path", "text_lang", "prompt_lang", "streaming_mode",
                               "text_split_method", "speed_factor", "gpt_weights",
                               "sovits_weights"),
                "cosyvoice": ("mode", "spk_id")}


@dataclass(frozen=True)
class EngineSpec:
    engine: str
    voice: str | None = None
    options: tuple = ()


@dataclass(frozen=True)
class TtsSettings:
    engines: tuple[EngineSpec, ...] = (EngineSpec("piper"),)
    level_dbfs: float = -20.0
    first_fragment_words: int = 6
    first_audio_timeout_s: float = 2.0
    retry_after_s: float = 60.0
    voice: VoiceReference | None = None   # the scene's reference clip, for cloning engines


def tts_settings(data, source: str, key: str = "tts", base_dir: Path | None = None,
                 voice: VoiceReference | None = None) -> TtsSettings:
    sec = Section(data, source, key)
    sec.allow_only(("engines", "level_dbfs", "first_fragment_words", "retry_after_s",
                    "first_audio_timeout_s"))
    first_audio = sec.number("first_audio_timeout_s", 2.0, minimum=0.1, maximum=30)
    specs = []
    for i, item in enumerate(sec.items("engines")):
        where = f"{sec.path('engines')}[{i}]"
        if isinstance(item, str):
            item = {"engine": item}
        entry = Section(item, source, where)
        engine = entry.text("engine", choices=ENGINES)
        if engine in REMOTE_ENGINES:
            specs.append(_remote_spec(entry, engine, first_audio, voice))
            continue
        entry.allow_only(_LOCAL_KEYS)
        voice = entry.text("voice") if entry.has("voice") else None
        if engine == "edge" and voice is None:
            raise entry.error("voice", "is required for edge-tts (for example zh-CN-XiaoxiaoNeural)")
        if engine == "piper" and voice is not None:
            path = Path(voice) if Path(voice).is_absolute() or base_dir is None else base_dir / voice
            if not path.is_file():
                raise entry.error("voice", f"Piper voice file not found: {path}")
            if not Path(f"{path}.json").is_file():
                raise entry.error("voice", f"Piper voice config not found: {path}.json")
            voice = str(path)
        options = tuple((k, entry.raw(k)) for k in ("rate", "volume", "pitch", "length_scale", "speaker_id")
                        if entry.has(k))
        specs.append(EngineSpec(engine, voice, options))
    return TtsSettings(
        engines=tuple(specs) or (EngineSpec("piper"),),
        level_dbfs=sec.number("level_dbfs", -20.0, minimum=-40, maximum=-6),
        first_fragment_words=sec.integer("first_fragment_words", 6, minimum=0, maximum=50),
        first_audio_timeout_s=first_audio,
        retry_after_s=sec.number("retry_after_s", 60.0, minimum=0, maximum=3600),
        voice=voice,
    )


def _remote_spec(entry: Section, engine: str, first_audio_default: float,
                 voice: VoiceReference | None) -> EngineSpec:
    entry.allow_only(_COMMON_REMOTE_KEYS + _REMOTE_KEYS[engine])
    url = entry.text("url")
    if not url.startswith(("http://", "https://")):
        raise entry.error("url", f"must start with http:// or https://, got {url!r}")
    first_audio = entry.number("first_audio_timeout_s", first_audio_default, minimum=0.1, maximum=30)
    options = {
        "url": url,
        "first_audio_timeout_s": first_audio,
        "stall_timeout_s": entry.number("stall_timeout_s", max(first_audio, 3.0), minimum=0.1,
                                        maximum=60),
    }
    if engine == "openai_speech":
        options.update(model=entry.text("model", "tts-1"), voice=entry.text("voice", "alloy"),
                       response_format=entry.text("response_format", "pcm", choices=("pcm", "wav")),
                       sample_rate=entry.integer("sample_rate", REMOTE_PCM_RATES["openai_speech"], minimum=8000, maximum=96_000),
                       api_key_env=entry.text("api_key_env", "OPENAI_API_KEY"))
        if entry.has("speed"):
            options["speed"] = entry.number("speed", minimum=0.25, maximum=4.0)
        if entry.has("instructions"):
            options["instructions"] = entry.text("instructions")
        return EngineSpec(engine, options["voice"], tuple(options.items()))
    if engine == "gpt_sovits":
        if voice is None:
            raise entry.error("engine", "gpt_sovits clones the scene's voice: add `voice: "
                                        "{reference: FILE, text: ...}` to the scene")
        options["sample_rate"] = entry.integer("sample_rate", REMOTE_PCM_RATES["gpt_sovits"], minimum=8000, maximum=96_000)
        for name in ("ref_audio_path", "text_lang", "prompt_lang", "text_split_method",
                     "gpt_weights", "sovits_weights"):
            if entry.has(name):
                options[name] = entry.text(name)
        if entry.has("speed_factor"):
            options["speed_factor"] = entry.number("speed_factor", minimum=0.5, maximum=2.0)
        if entry.has("streaming_mode"):
            mode = entry.raw("streaming_mode")
            if mode not in (True, 1, 2, 3) or mode is False:
                raise entry.error("streaming_mode", f"must be true, 1, 2 or 3, got {mode!r}")
            options["streaming_mode"] = mode
        return EngineSpec(engine, None, tuple(options.items()))
    if engine == "cosyvoice":
        mode = entry.text("mode", "zero_shot", choices=("zero_shot", "cross_lingual", "sft"))
        options.update(mode=mode, sample_rate=entry.integer("sample_rate", REMOTE_PCM_RATES["cosyvoice"], minimum=8000,
                                                            maximum=96_000))
        if mode == "sft":
            options["spk_id"] = entry.text("spk_id")
        elif voice is None:
            raise entry.error("mode", f"{mode} clones the scene's voice: add `voice: {{reference: "
                                      f"FILE, text: ...}}` to the scene, or use mode sft")
        return EngineSpec(engine, options.get("spk_id"), tuple(options.items()))
    # fish_speech
    options.update(chunk_length=entry.integer("chunk_length", 200, minimum=100, maximum=300),
                   sample_rate=entry.integer("sample_rate", REMOTE_PCM_RATES["fish_speech"], minimum=8000, maximum=96_000),
                   api_key_env=entry.text("api_key_env", "FISH_SPEECH_API_KEY"))
    for name, low, high in (("temperature", 0.1, 1.0), ("top_p", 0.1, 1.0)):
        if entry.has(name):
            options[name] = entry.number(name, minimum=low, maximum=high)
    if entry.has("seed"):
        options["seed"] = entry.integer("seed", minimum=0)
    if entry.has("reference_id"):
        options["reference_id"] = entry.text("reference_id")
    elif voice is None:
        raise entry.error("engine", "fish_speech clones the scene's voice: add `voice: {reference: "
                                    "FILE, text: ...}` to the scene, or set reference_id")
    return EngineSpec(engine, options.get("reference_id"), tuple(options.items()))


def build_engine(settings: TtsSettings, count_bytes=None):
    """A FallbackChain over the engines that load; an engine that fails to load is logged
    and left out, so one broken voice never leaves the anchor mute.

    count_bytes(engine, n, direction), when given, hears every byte a remote engine sends
    and receives (Metrics.tts_bytes)."""
    from broadcaster.tts.engine import TTSError
    from broadcaster.tts.fallback import FallbackChain

    engines = []
    for spec in settings.engines:
        try:
            engines.append(_load(spec, settings.voice, count_bytes))
        except (TTSError, OSError, ImportError, ValueError) as exc:
            log.error("tts engine %s%s could not load: %s", spec.engine,
                      f" ({spec.voice})" if spec.voice else "", exc)
    if not engines:
        from broadcaster.tts.piper_engine import PiperEngine
        log.warning("no configured tts engine loaded; using the packaged Piper voice")
        engines.append(PiperEngine())
    return FallbackChain(engines, retry_after_s=settings.retry_after_s)


def _load(spec: EngineSpec, voice: VoiceReference | None, count_bytes):
    options = dict(spec.options)
    if spec.engine == "piper":
        from broadcaster.tts.piper_engine import PiperEngine
        return PiperEngine(spec.voice, **{k: options[k] for k in ("length_scale", "speaker_id")
                                          if k in options})
    if spec.engine == "edge":
        from broadcaster.tts.edge_engine import EdgeTTSEngine
        return EdgeTTSEngine(spec.voice, **{k: str(options[k]) for k in ("rate", "volume", "pitch")
                                            if k in options})
    from broadcaster.tts.http_audio import Timeouts
    timeouts = Timeouts(first_audio_s=options.pop("first_audio_timeout_s"),
                        stall_s=options.pop("stall_timeout_s"))
    count = None
    if count_bytes is not None:
        def count(n: int, direction: str, engine: str = spec.engine) -> None:
            count_bytes(engine, n, direction)
    if spec.engine == "cosyvoice":
        from broadcaster.tts.cosyvoice import CosyVoiceEngine
        return CosyVoiceEngine(voice=voice, timeouts=timeouts, count=count, **options)
    if spec.engine == "gpt_sovits":
        from broadcaster.tts.gpt_sovits import GptSovitsEngine
        return GptSovitsEngine(voice=voice, timeouts=timeouts, count=count, **options)
    if spec.engine == "fish_speech":
        from broadcaster.tts.fish_speech import FishSpeechEngine
        return FishSpeechEngine(voice=voice, timeouts=timeouts, count=count, **options)
    from broadcaster.tts.openai_speech import OpenAISpeechEngine
    return OpenAISpeechEngine(timeouts=timeouts, count=count, **options)
