"""Fonts and line wrapping for text layers and captions, CJK included.

The default font is Noto Sans CJK (Debian fonts-noto-cjk, installed by the set-up script):
it covers Latin and Chinese/Japanese/Korean in one face. DejaVu Sans and Pillow's built-in
font are fallbacks so a missing font never stops the broadcast.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from pathlib import Path

from PIL import ImageFont

log = logging.getLogger(__name__)

FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Medium.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
# whitespace | a run of non-CJK characters (a word) | one CJK character
_TOKEN = re.compile(r"\s+|[^\s\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]+|.", re.S)


def default_font_path() -> Path | None:
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


@functools.lru_cache(maxsize=32)
def load_font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    chosen = path or (str(default_font_path()) if default_font_path() else None)
    if chosen:
        try:
            return ImageFont.truetype(chosen, size)
        except OSError as exc:
            log.warning("font %s unusable (%s); using the built-in font", chosen, exc)
    return ImageFont.load_default(size)


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def wrap(text: str, font, max_width: int) -> list[str]:
    """Greedy wrap by pixel width: Latin breaks at spaces, CJK between any two characters."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for token in _TOKEN.findall(paragraph):
            if token.isspace():
                if line:
                    line += " "
                continue
            candidate = line + token
            if font.getlength(candidate.rstrip()) <= max_width or not line.strip():
                if font.getlength(candidate) > max_width and not line.strip():
                    # a single word wider than the box: break it by characters
                    for ch in token:
                        if line and font.getlength(line + ch) > max_width:
                            lines.append(line.rstrip())
                            line = ""
                        line += ch
                else:
                    line = candidate
            else:
                lines.append(line.rstrip())
                line = token
        lines.append(line.rstrip())
    return [ln for ln in lines if ln] or [""]
