"""Builds the anchor's voice from the scene (or config) `tts:` section.

    tts:
      engines:                      # tried in order; a failing engine falls back to the next
        - piper                     # the packaged en_US voice (offline)
        - {engine: piper, voice: voices/en_GB-alan-medium.onnx}
        - {engine: edge, voice: zh-CN-XiaoxiaoNeural, rate: "+0%"}
      level_dbfs: -20               # loudness every engine is normalised to (gated RMS)
      first_fragment_words: 6       # speak a long first sentence in two parts (0: never)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from broadcaster.schema import Section

log = logging.getLogger(__name__)
ENGINES = ("piper", "edge")


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


def tts_settings(data, source: str, key: str = "tts", base_dir: Path | None = None) -> TtsSettings:
    sec = Section(data, source, key)
    sec.allow_only(("engines", "level_dbfs", "first_fragment_words", "retry_after_s"))
    specs = []
    for i, item in enumerate(sec.items("engines")):
        where = f"{sec.path('engines')}[{i}]"
        if isinstance(item, str):
            item = {"engine": item}
        entry = Section(item, source, where)
        entry.allow_only(("engine", "voice", "rate", "volume", "pitch", "length_scale", "speaker_id"))
        engine = entry.text("engine", choices=ENGINES)
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
    )


def build_engine(settings: TtsSettings):
    """A FallbackChain over the engines that load; an engine that fails to load is logged
    and left out, so one broken voice never leaves the anchor mute."""
    from broadcaster.tts.engine import TTSError
    from broadcaster.tts.fallback import FallbackChain

    engines = []
    for spec in settings.engines:
        options = dict(spec.options)
        try:
            if spec.engine == "piper":
                from broadcaster.tts.piper_engine import PiperEngine
                engines.append(PiperEngine(spec.voice, **{k: options[k] for k in ("length_scale", "speaker_id")
                                                          if k in options}))
            else:
                from broadcaster.tts.edge_engine import EdgeTTSEngine
                engines.append(EdgeTTSEngine(spec.voice, **{k: str(options[k]) for k in ("rate", "volume", "pitch")
                                                            if k in options}))
        except (TTSError, OSError, ImportError, ValueError) as exc:
            log.error("tts engine %s%s could not load: %s", spec.engine,
                      f" ({spec.voice})" if spec.voice else "", exc)
    if not engines:
        from broadcaster.tts.piper_engine import PiperEngine
        log.warning("no configured tts engine loaded; using the packaged Piper voice")
        engines.append(PiperEngine())
    return FallbackChain(engines)
