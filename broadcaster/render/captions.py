"""Captions: the sentence being spoken, wrapped into the scene's caption area.

Rendered with Pillow only when the text changes and kept as a YUVA patch, so an unchanged
caption costs one blend per frame.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PIL import Image, ImageDraw

from broadcaster.render.text import load_font, wrap
from broadcaster.render.yuv import YuvaPatch
from broadcaster.scene import CaptionSpec


class CaptionRenderer:
    def __init__(self, spec: CaptionSpec, cache_size: int = 16):
        self.spec = spec
        self.font = load_font(str(spec.font) if spec.font else None, spec.size)
        self._cache: OrderedDict[str, YuvaPatch] = OrderedDict()
        self._cache_size = cache_size

    def lines(self, text: str) -> list[str]:
        """The lines shown: the last max_lines of the wrapped text (the words being spoken)."""
        pad = max(4, self.spec.size // 3)
        lines = wrap(text.strip(), self.font, self.spec.width - 2 * pad)
        return lines[-self.spec.max_lines:]

    def render_rgba(self, text: str) -> np.ndarray:
        spec = self.spec
        pad = max(4, spec.size // 3)
        lines = self.lines(text)
        ascent, descent = self.font.getmetrics() if hasattr(self.font, "getmetrics") else (spec.size, 0)
        line_h = ascent + descent + 2
        block_h = min(spec.height, line_h * len(lines) + 2 * pad)
        img = Image.new("RGBA", (spec.width, spec.height), (0, 0, 0, 0))
        draw = ImageDraw.Draw(img)
        widths = [self.font.getlength(line) for line in lines]
        block_w = min(spec.width, int(max(widths, default=0)) + 2 * pad)
        top = spec.height - block_h          # captions sit at the bottom of their area
        left = {"left": 0, "center": (spec.width - block_w) // 2, "right": spec.width - block_w}[spec.align]
        if spec.background is not None:
            draw.rounded_rectangle((left, top, left + block_w - 1, spec.height - 1),
                                   radius=min(12, pad * 2), fill=spec.background)
        for i, (line, width) in enumerate(zip(lines, widths)):
            if spec.align == "left":
                x = left + pad
            elif spec.align == "right":
                x = left + block_w - pad - width
            else:
                x = (spec.width - width) / 2
            y = top + pad + i * line_h
            draw.text((x + 1, y + 1), line, font=self.font, fill=(0, 0, 0, 200))
            draw.text((x, y), line, font=self.font, fill=spec.color)
        return np.asarray(img)

    def patch(self, text: str) -> YuvaPatch:
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        patch = YuvaPatch.from_rgba(self.render_rgba(text))
        self._cache[text] = patch
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return patch
