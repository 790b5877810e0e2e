"""The simplest anchor renderer: a still portrait. It is the fallback when no animated
renderer is configured or one fails to load, and the compositor bakes it into the static
background because it never changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from broadcaster.imagefile import read_image_rgba


def fit_portrait(path: Path, width: int, height: int) -> np.ndarray:
    """The portrait scaled to fit the box (aspect kept), bottom-centred, as RGBA."""
    img = read_image_rgba(path)
    scale = min(width / img.width, height / img.height)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    img = img.resize(size, Image.LANCZOS)
    canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    canvas.paste(img, ((width - size[0]) // 2, height - size[1]))
    return np.asarray(canvas)


class StaticAnchor:
    """An AnchorRenderer that draws the same RGBA portrait every frame."""

    static = True

    def __init__(self, portrait: Path, width: int, height: int):
        self.width, self.height = width, height
        self.image = fit_portrait(portrait, width, height)

    def render(self, frame_index: int, speech: np.ndarray) -> np.ndarray:
        return self.image

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass
