"""The chat overlay: the viewer question being answered (and recent ones) in a scene box.

    chat_overlay: {x: 24, y: 96, width: 200, height: 240, size: 18, max_messages: 4,
                   color: "#ffffff", background: "#00000090"}
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from broadcaster.render.text import load_font, wrap
from broadcaster.schema import Section


@dataclass(frozen=True)
class OverlaySpec:
    x: int
    y: int
    width: int
    height: int
    size: int = 18
    max_messages: int = 4
    color: tuple = (255, 255, 255, 255)
    name_color: tuple = (255, 209, 102, 255)
    background: tuple | None = (0, 0, 0, 144)


def overlay_spec(data, source: str, width: int, height: int) -> OverlaySpec:
    sec = Section(data, source, "chat_overlay")
    sec.allow_only(("x", "y", "width", "height", "size", "max_messages", "color", "name_color", "background"))
    x = sec.integer("x", minimum=0, maximum=width - 2)
    y = sec.integer("y", minimum=0, maximum=height - 2)
    w = sec.integer("width", minimum=16, maximum=width - x)
    h = sec.integer("height", minimum=16, maximum=height - y)
    bg = sec.raw("background")
    return OverlaySpec(
        x // 2 * 2, y // 2 * 2, w // 2 * 2, h // 2 * 2, size=sec.integer("size", 18, minimum=8, maximum=96),
        max_messages=sec.integer("max_messages", 4, minimum=1, maximum=20),
        color=sec.color("color", "#ffffff"), name_color=sec.color("name_color", "#ffd166"),
        background=None if isinstance(bg, str) and bg.lower() == "none" else sec.color("background", "#00000090"),
    )


class ChatOverlay:
    """Keeps the last few (user, text) lines and renders them newest at the bottom."""

    def __init__(self, spec: OverlaySpec):
        self.spec = spec
        self.font = load_font(None, spec.size)
        self.lines: deque[tuple[str, str]] = deque(maxlen=spec.max_messages)

    def add(self, user: str, text: str) -> np.ndarray:
        self.lines.append((user[:40], text[:300]))
        return self.render()

    def render(self) -> np.ndarray:
        s = self.spec
        img = Image.new("RGBA", (s.width, s.height), (0, 0, 0, 0))
        draw = ImageDraw.Draw(img)
        pad = max(4, s.size // 3)
        ascent, descent = self.font.getmetrics()
        line_h = ascent + descent + 2
        blocks = []
        for user, text in self.lines:
            wrapped = wrap(f"{user}: {text}", self.font, s.width - 2 * pad)
            blocks.append((user, wrapped))
        y = s.height - pad
        drawn = []
        for user, wrapped in reversed(blocks):          # newest at the bottom, oldest cut off
            need = line_h * len(wrapped) + pad
            if y - need < pad:
                break
            y -= need
            drawn.append((y, user, wrapped))
        if drawn and s.background is not None:
            top = min(d[0] for d in drawn) - pad
            draw.rounded_rectangle((0, top, s.width - 1, s.height - 1), radius=10, fill=s.background)
        for top, user, wrapped in drawn:
            for i, line in enumerate(wrapped):
                yy = top + i * line_h
                if i == 0 and line.startswith(user + ":"):
                    draw.text((pad, yy), user + ":", font=self.font, fill=s.name_color)
                    offset = self.font.getlength(user + ": ")
                    draw.text((pad + offset, yy), line[len(user) + 2:], font=self.font, fill=s.color)
                else:
                    draw.text((pad, yy), line, font=self.font, fill=s.color)
        return np.asarray(img)
