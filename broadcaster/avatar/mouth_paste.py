"""Pasting Wav2Lip's predicted mouth back into a frame: only the lower half of the face box,
through a feathered mask made once per region size, in uint8 with small float temporaries.

Wav2Lip regenerates the lower half of a 96x96 face (the upper half is its input, unmasked),
so the upper half is never touched: the eyes, brows and blinks stay the clip's own.
"""

from __future__ import annotations

import cv2
import numpy as np

FACE_SIZE = 96


def mouth_region(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The lower half of a face box (x0, y0, x1, y1): where the mouth is pasted."""
    x0, y0, x1, y1 = box
    return x0, y0 + (y1 - y0) // 2, x1, y1


def feathered_mask(h: int, w: int, feather: float = 0.12) -> np.ndarray:
    """(h, w, 1) float32: 1 inside the region, easing to 0 at its four edges."""
    f = max(1, int(round(min(h, w) * feather)))
    ramp_y = np.clip(np.minimum(np.arange(h) + 0.5, h - np.arange(h) - 0.5) / f, 0.0, 1.0)
    ramp_x = np.clip(np.minimum(np.arange(w) + 0.5, w - np.arange(w) - 0.5) / f, 0.0, 1.0)
    ease = lambda r: r * r * (3.0 - 2.0 * r)  # noqa: E731 - smoothstep, no visible edge
    return (ease(ramp_y)[:, None] * ease(ramp_x)[None, :]).astype(np.float32)[..., None]


def prediction_mouth(pred: np.ndarray) -> np.ndarray:
    """A (3, 96, 96) BGR prediction in [0, 1] -> its lower half as (48, 96, 3) RGB uint8."""
    lower = pred[::-1, FACE_SIZE // 2:, :].transpose(1, 2, 0)
    return (lower * 255.0 + 0.5).clip(0, 255).astype(np.uint8)


class MouthPaster:
    """Blends a predicted mouth into an RGBA frame; masks are cached per region size."""

    def __init__(self) -> None:
        self._masks: dict[tuple[int, int], np.ndarray] = {}

    def mask(self, h: int, w: int) -> np.ndarray:
        mask = self._masks.get((h, w))
        if mask is None:
            if len(self._masks) > 64:          # a moving face has a handful of box sizes
                self._masks.clear()
            mask = self._masks[(h, w)] = feathered_mask(h, w)
        return mask

    def paste(self, mouth: np.ndarray, frame: np.ndarray, box: tuple[int, int, int, int]) -> None:
        """Blend `mouth` ((48, 96, 3) RGB uint8) into the lower half of `box` in frame (RGBA)."""
        x0, y0, x1, y1 = mouth_region(box)
        h, w = y1 - y0, x1 - x0
        if h < 2 or w < 2:
            return
        src = cv2.resize(mouth, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        dst = frame[y0:y1, x0:x1, :3]
        region = dst.astype(np.float32)
        src -= region
        src *= self.mask(h, w)
        src += region + 0.5
        dst[:] = src.astype(np.uint8)
