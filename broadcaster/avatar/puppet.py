"""PuppetAnchor: the built-in 2D puppet rendered by ONNX Runtime, one call per video frame.

The portrait canvas is fitted into the anchor rectangle (bottom-centred). Only the head crop
is run through the model; the static body outside it is prepared once. When the crop would be
larger than max_model_pixels, the model runs smaller and its output is upscaled (cheap, and it
keeps 720p within the one-core budget).
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import cv2
import numpy as np

from broadcaster.avatar.audio_features import MouthDriver
from broadcaster.avatar.idle_motion import BlinkSchedule, HeadMotion
from broadcaster.avatar.onnx_session import open_session

log = logging.getLogger(__name__)

DEFAULT_ASSETS = Path(__file__).resolve().parent.parent.parent / "scenes" / "assets" / "anchor"
LAYER_ORDER = ["body", "head", "lips", "mouth_interior", "lids"]


def load_layer(path: Path) -> np.ndarray:
    """RGBA PNG -> premultiplied float32 (h, w, 4)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3 or img.shape[2] != 4:
        raise ValueError(f"anchor layer {path} is missing or not an RGBA PNG")
    rgba = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA).astype(np.float32) / 255.0
    rgba[..., :3] *= rgba[..., 3:4]
    return rgba


def place(layer: np.ndarray, scale: float, tx: float, ty: float, size: tuple[int, int]) -> np.ndarray:
    """Scale `layer` (area filter) then shift by a sub-pixel offset into an image of size (w, h)."""
    h0, w0 = layer.shape[:2]
    sw, sh = max(1, round(w0 * scale)), max(1, round(h0 * scale))
    small = cv2.resize(layer, (sw, sh), interpolation=cv2.INTER_AREA)
    m = np.array([[1.0, 0.0, tx], [0.0, 1.0, ty]], np.float32)
    return cv2.warpAffine(small, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


class PuppetAnchor:
    """An AnchorRenderer: a drawn puppet whose mouth, eyes and head an ONNX model moves."""

    static = False

    def __init__(self, width: int, height: int, *, fps: float = 20.0, assets: str | Path | None = None,
                 model: str | Path | None = None, seed: int = 0, max_model_pixels: int = 90_000,
                 intra_op_threads: int = 1, prefer_gpu: bool = True, idle_motion: bool = True) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"PuppetAnchor: anchor rectangle {width}x{height} is too small")
        self.width, self.height, self.fps = width, height, fps
        self.assets = Path(assets) if assets else DEFAULT_ASSETS
        geo_path = self.assets / "geometry.json"
        try:
            self.geometry = json.loads(geo_path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"anchor geometry {geo_path} unreadable: {exc}") from exc
        self.session = open_session(model or self.assets / "puppet.onnx", intra_op_threads=intra_op_threads,
                                    prefer_gpu=prefer_gpu, purpose="puppet")
        self.idle_motion = idle_motion
        self._mouth = MouthDriver(fps)
        self._blinks = BlinkSchedule(seed)
        self._head = HeadMotion(seed)
        self.last_params = np.zeros(7, np.float32)
        self._prepare(max_model_pixels)

    def _prepare(self, max_model_pixels: int) -> None:
        cw, ch = self.geometry["canvas"]
        layers = [load_layer(self.assets / f"{name}.png") for name in LAYER_ORDER]
        f = min(self.width / cw, self.height / ch)
        ox, oy = (self.width - cw * f) / 2.0, self.height - ch * f
        # static body frame
        body = place(layers[0], f, ox, oy, (self.width, self.height))
        self._static = self._to_uint8(body)
        # head crop snapped to whole output pixels, then mapped back to canvas px
        x0, y0, x1, y1 = self.geometry["crop"]
        X0, Y0 = max(0, math.floor(x0 * f + ox)), max(0, math.floor(y0 * f + oy))
        X1, Y1 = min(self.width, math.ceil(x1 * f + ox)), min(self.height, math.ceil(y1 * f + oy))
        self._box = (X0, Y0, X1, Y1)
        out_w, out_h = X1 - X0, Y1 - Y0
        k = min(1.0, math.sqrt(max_model_pixels / float(out_w * out_h)))
        mw, mh = max(8, round(out_w * k)), max(8, round(out_h * k))
        self._crop = np.array([(X0 - ox) / f, (Y0 - oy) / f, out_w / f, out_h / f], np.float32)
        # layers resampled onto the model grid: model px = (canvas px - crop0) * scale
        sx = mw / self._crop[2]
        stack = [place(l, sx, -self._crop[0] * sx, -self._crop[1] * sx, (mw, mh)) for l in layers]
        self._layers = np.ascontiguousarray(np.stack(stack).transpose(0, 3, 1, 2), dtype=np.float32)
        self.model_size = (mw, mh)
        log.info("puppet anchor %dx%d: head crop %dx%d, model runs at %dx%d", self.width, self.height,
                 out_w, out_h, mw, mh)

    @staticmethod
    def _to_uint8(premul: np.ndarray) -> np.ndarray:
        a = premul[..., 3:4]
        rgb = np.where(a > 1e-4, premul[..., :3] / np.maximum(a, 1e-4), 0.0)
        return (np.concatenate([rgb, a], axis=-1).clip(0, 1) * 255 + 0.5).astype(np.uint8)

    def params_for(self, frame_index: int, speech: np.ndarray) -> np.ndarray:
        """The seven puppet parameters for this frame (advances the mouth smoother)."""
        t = frame_index / self.fps
        mouth_open, mouth_wide = self._mouth.update(np.asarray(speech, dtype=np.float32).reshape(-1))
        blink = self._blinks.value(t)
        if self.idle_motion:
            breath, dx, dy, tilt = self._head.value(t, self._mouth.talking)
        else:
            breath = dx = dy = tilt = 0.0
        return np.array([mouth_open, mouth_wide, blink, breath, dx, dy, tilt], np.float32)

    def render(self, frame_index: int, speech: np.ndarray) -> np.ndarray:
        params = self.params_for(frame_index, speech)
        return self.render_params(params)

    def render_params(self, params: np.ndarray) -> np.ndarray:
        """Render with explicit parameters (snapshots, tests, benchmarks)."""
        self.last_params = np.asarray(params, np.float32)
        (head,) = self.session.run(None, {"layers": self._layers, "params": self.last_params, "crop": self._crop})
        X0, Y0, X1, Y1 = self._box
        if head.shape[1] != X1 - X0 or head.shape[0] != Y1 - Y0:
            head = cv2.resize(head, (X1 - X0, Y1 - Y0), interpolation=cv2.INTER_LINEAR)
        frame = self._static.copy()
        frame[Y0:Y1, X0:X1] = head
        return frame

    def reset(self) -> None:
        """Back to idle at once: mouth closed, talking envelope cleared (blinks keep their rhythm)."""
        self._mouth.reset()

    @property
    def mouth_box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the mouth area in output pixels (tests check the lips there)."""
        cw, ch = self.geometry["canvas"]
        f = min(self.width / cw, self.height / ch)
        ox, oy = (self.width - cw * f) / 2.0, self.height - ch * f
        m = self.geometry["mouth"]
        hw, hh = m["half_w"] + 14, m["max_open"] + m["lip"] + 8
        return (int((m["cx"] - hw) * f + ox), int((m["cy"] - hh) * f + oy),
                int((m["cx"] + hw) * f + ox), int((m["cy"] + hh + 8) * f + oy))

    @property
    def eyes_box(self) -> tuple[int, int, int, int]:
        cw, ch = self.geometry["canvas"]
        f = min(self.width / cw, self.height / ch)
        ox, oy = (self.width - cw * f) / 2.0, self.height - ch * f
        xs = [e[0] - e[2] - 8 for e in self.geometry["eyes"]] + [e[0] + e[2] + 8 for e in self.geometry["eyes"]]
        ys = [e[1] - e[3] - 8 for e in self.geometry["eyes"]] + [e[1] + e[3] + 8 for e in self.geometry["eyes"]]
        return (int(min(xs) * f + ox), int(min(ys) * f + oy), int(max(xs) * f + ox), int(max(ys) * f + oy))

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
