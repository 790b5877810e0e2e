"""Builds each video frame from the scene: a cached static base plus dynamic patches.

Everything that never changes (background, image and text layers, a still anchor) is drawn
once into a yuv420p base; a frame is a copy of the base with the anchor, captions and any
overlays blended in at their own size.
"""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image, ImageDraw

from broadcaster.avatar.renderer import SpeechAhead
from broadcaster.errors import ConfigError
from broadcaster.imagefile import ImageFileError, read_image_rgba
from broadcaster.render.captions import CaptionRenderer
from broadcaster.render.text import load_font, wrap
from broadcaster.render.yuv import YuvaPatch, blend, rgb_to_yuv420
from broadcaster.scene import Background, ImageLayer, Scene, TextLayer


class Compositor:
    def __init__(self, scene: Scene, anchor=None):
        self.scene = scene
        self.width, self.height = scene.canvas.width, scene.canvas.height
        self.anchor = anchor
        self.captions = CaptionRenderer(scene.captions) if scene.captions and scene.captions.enabled else None
        self._overlays: dict[str, tuple[YuvaPatch, int, int]] = {}
        self._overlay_lock = threading.Lock()
        self._anchor_source: np.ndarray | None = None
        self._anchor_patch: YuvaPatch | None = None
        self.base = rgb_to_yuv420(self.render_base_rgb())

    # -- static part -------------------------------------------------------------------
    def render_base_rgb(self) -> np.ndarray:
        img = _background(self.scene.background, self.width, self.height, self.scene.source)
        for layer in self.scene.layers:
            if isinstance(layer, ImageLayer):
                _draw_image_layer(img, layer, self.scene.source)
            elif isinstance(layer, TextLayer):
                _draw_text_layer(img, layer)
        if self.anchor is not None and self.anchor.static:
            spec = self.scene.anchor
            portrait = Image.fromarray(self.anchor.render(0, np.zeros(0, np.float32)), "RGBA")
            img.alpha_composite(portrait, (spec.x, spec.y))
        return np.asarray(img.convert("RGB"))

    # -- dynamic part ------------------------------------------------------------------
    def set_overlay(self, name: str, rgba: np.ndarray | None, x: int = 0, y: int = 0) -> None:
        """Show (or with None, remove) a named RGBA overlay; safe from any thread."""
        patch = YuvaPatch.from_rgba(rgba) if rgba is not None else None
        with self._overlay_lock:
            if patch is None:
                self._overlays.pop(name, None)
            else:
                self._overlays[name] = (patch, x, y)

    def compose(self, frame_index: int, speech: np.ndarray, caption: str | None,
                speech_pos: int | None = None) -> np.ndarray:
        """speech_pos: the slot's place in the speech stream (MixChunk.speech_pos), for an
        anchor that rendered ahead (SpeechAhead)."""
        frame = self.base.copy()
        spec = self.scene.anchor
        if self.anchor is not None and spec is not None and not self.anchor.static:
            if isinstance(self.anchor, SpeechAhead):     # it converts its own pictures
                patch = self.anchor.render_slot(frame_index, speech, speech_pos)
            else:
                rgba = self.anchor.render(frame_index, speech)
                if rgba is not self._anchor_source:     # an unchanged frame is not converted again
                    self._anchor_source = rgba
                    self._anchor_patch = YuvaPatch.from_rgba(rgba)
                patch = self._anchor_patch
            blend(frame, self.width, self.height, patch, spec.x, spec.y)
        if self.captions is not None and caption:
            c = self.scene.captions
            blend(frame, self.width, self.height, self.captions.patch(caption), c.x, c.y)
        with self._overlay_lock:
            overlays = list(self._overlays.values())
        for patch, x, y in overlays:
            blend(frame, self.width, self.height, patch, x, y)
        return frame


def _background(bg: Background, width: int, height: int, source: str) -> Image.Image:
    if bg.kind == "image":
        src = _read(bg.image, source, "background.image")
        if bg.fit == "stretch":
            return src.resize((width, height), Image.LANCZOS)
        scale = (max if bg.fit == "cover" else min)(width / src.width, height / src.height)
        size = (max(1, round(src.width * scale)), max(1, round(src.height * scale)))
        src = src.resize(size, Image.LANCZOS)
        canvas = Image.new("RGBA", (width, height), (0, 0, 0, 255))
        # paste accepts negative offsets, which crops a 'cover' image centred
        canvas.paste(src, ((width - size[0]) // 2, (height - size[1]) // 2), src)
        return canvas
    if bg.kind == "gradient":
        if bg.direction == "vertical":
            t = np.linspace(0, 1, height, dtype=np.float32)[:, None].repeat(width, 1)
        elif bg.direction == "horizontal":
            t = np.linspace(0, 1, width, dtype=np.float32)[None, :].repeat(height, 0)
        else:
            yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
            t = (xx / max(width - 1, 1) + yy / max(height - 1, 1)) / 2
        c1 = np.array(bg.color, np.float32)
        c2 = np.array(bg.color2, np.float32)
        rgba = c1 + (c2 - c1) * t[..., None]
        rgba[..., 3] = 255
        return Image.fromarray((rgba + 0.5).astype(np.uint8), "RGBA")
    return Image.new("RGBA", (width, height), bg.color[:3] + (255,))


def _read(path, source: str, key: str) -> Image.Image:
    try:
        return read_image_rgba(path)
    except ImageFileError as exc:
        raise ConfigError(source, key, f"{path}: {exc}") from None


def _draw_image_layer(canvas: Image.Image, layer: ImageLayer, source: str) -> None:
    img = _read(layer.path, source, "layers")
    if layer.width or layer.height:
        w = layer.width or round(img.width * layer.height / img.height)
        h = layer.height or round(img.height * layer.width / img.width)
        img = img.resize((max(1, w), max(1, h)), Image.LANCZOS)
    if layer.opacity < 1.0:
        alpha = np.asarray(img)[..., 3].astype(np.float32) * layer.opacity
        img.putalpha(Image.fromarray(alpha.astype(np.uint8)))
    dest = (max(0, layer.x), max(0, layer.y))
    crop = (max(0, -layer.x), max(0, -layer.y))
    if crop[0] < img.width and crop[1] < img.height:
        canvas.alpha_composite(img, dest, crop)


def _draw_text_layer(canvas: Image.Image, layer: TextLayer) -> None:
    font = load_font(str(layer.font) if layer.font else None, layer.size)
    max_width = layer.max_width or (canvas.width - layer.x - layer.padding * 2)
    lines = wrap(layer.text, font, max(8, max_width))
    ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (layer.size, 0)
    line_h = ascent + descent + 2
    width = int(max(font.getlength(line) for line in lines))
    overlay = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    if layer.background is not None:
        draw.rounded_rectangle((layer.x, layer.y, layer.x + width + 2 * layer.padding,
                                layer.y + line_h * len(lines) + 2 * layer.padding),
                               radius=min(10, layer.padding * 2), fill=layer.background)
    for i, line in enumerate(lines):
        draw.text((layer.x + layer.padding, layer.y + layer.padding + i * line_h), line,
                  font=font, fill=layer.color)
    canvas.alpha_composite(overlay)
