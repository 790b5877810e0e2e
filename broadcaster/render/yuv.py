"""Frames live in yuv420p from the compositor to the encoder, so no per-frame full-canvas
colour conversion is needed: static layers are converted once, dynamic patches (anchor,
captions, overlays) are converted at their own size and blended into the planes.

Colour: BT.709, limited range (the encoder tags the stream accordingly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# BT.709 limited-range coefficients for 8-bit RGB.
_KY = np.array([0.2126, 0.7152, 0.0722], np.float32) * (219.0 / 255.0)
_KU = np.array([-0.2126 / 1.8556, -0.7152 / 1.8556, 0.5], np.float32) * (224.0 / 255.0)
_KV = np.array([0.5, -0.7152 / 1.5748, -0.0722 / 1.5748], np.float32) * (224.0 / 255.0)


def new_frame(width: int, height: int) -> np.ndarray:
    return np.empty((height * 3 // 2, width), np.uint8)


def planes(frame: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes inside a (h*3/2, w) yuv420p buffer."""
    flat = frame.reshape(-1)                     # a view: the buffer is contiguous
    luma, chroma = width * height, (width // 2) * (height // 2)
    y = frame[:height]
    u = flat[luma:luma + chroma].reshape(height // 2, width // 2)
    v = flat[luma + chroma:luma + 2 * chroma].reshape(height // 2, width // 2)
    return y, u, v


def _subsample(plane: np.ndarray) -> np.ndarray:
    h, w = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    p = plane[:h, :w]
    return (p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2]) * 0.25


def rgb_to_yuv420(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 RGB with even h, w -> (h*3/2, w) uint8 yuv420p."""
    h, w = rgb.shape[:2]
    f = rgb.astype(np.float32)
    out = new_frame(w, h)
    y, u, v = planes(out, w, h)
    np.clip(f @ _KY + 16.5, 0, 255, out=f[..., 0])
    y[:] = f[..., 0]
    f = rgb.astype(np.float32)
    u[:] = np.clip(_subsample(f @ _KU) + 128.5, 0, 255)
    v[:] = np.clip(_subsample(f @ _KV) + 128.5, 0, 255)
    return out


def yuv420_to_rgb(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Inverse of rgb_to_yuv420 (for snapshots and checks)."""
    y, u, v = planes(frame, width, height)
    yf = (y.astype(np.float32) - 16.0) * (255.0 / 219.0)
    uf = np.repeat(np.repeat(u.astype(np.float32) - 128.0, 2, 0), 2, 1) * (255.0 / 224.0)
    vf = np.repeat(np.repeat(v.astype(np.float32) - 128.0, 2, 0), 2, 1) * (255.0 / 224.0)
    r = yf + 1.5748 * vf
    g = yf - 0.1873 * uf - 0.4681 * vf
    b = yf + 1.8556 * uf
    return np.clip(np.stack([r, g, b], -1) + 0.5, 0, 255).astype(np.uint8)


@dataclass
class YuvaPatch:
    """An RGBA image converted once to planes, plus its alpha scaled to 0..256 at luma and
    chroma size."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    alpha_y: np.ndarray   # uint16, 0..256
    alpha_c: np.ndarray
    opaque: bool

    @property
    def width(self) -> int:
        return self.y.shape[1]

    @property
    def height(self) -> int:
        return self.y.shape[0]

    def yuv420(self) -> np.ndarray:
        """The planes as one (h*3/2, w) yuv420p buffer (a copy, for snapshots and checks)."""
        return np.concatenate([self.y.reshape(-1), self.u.reshape(-1),
                               self.v.reshape(-1)]).reshape(self.height * 3 // 2, self.width)

    def to_rgba(self) -> np.ndarray:
        """Back to RGBA (for snapshots): colour through yuv420_to_rgb, alpha from alpha_y."""
        rgb = yuv420_to_rgb(self.yuv420(), self.width, self.height)
        alpha = (self.alpha_y - (self.alpha_y >= 129)).astype(np.uint8)    # from_rgba's a + (a >> 7)
        return np.concatenate([rgb, alpha[..., None]], axis=2)

    @classmethod
    def from_rgba(cls, rgba: np.ndarray) -> "YuvaPatch":
        h, w = rgba.shape[0] // 2 * 2, rgba.shape[1] // 2 * 2
        rgba = rgba[:h, :w]
        frame = rgb_to_yuv420(np.ascontiguousarray(rgba[..., :3]))
        y, u, v = planes(frame, w, h)
        a = rgba[..., 3].astype(np.uint16)
        alpha_y = a + (a >> 7)   # 0..255 -> 0..256
        alpha_c = (_subsample(alpha_y.astype(np.float32)) + 0.5).astype(np.uint16)
        return cls(y.copy(), u.copy(), v.copy(), alpha_y, alpha_c, bool((a == 255).all()))


def same_alpha(rgba: np.ndarray, like: YuvaPatch) -> YuvaPatch:
    """RGBA whose alpha is `like`'s (frames of one clip) converted with its alpha planes shared."""
    h, w = like.height, like.width
    frame = rgb_to_yuv420(np.ascontiguousarray(rgba[:h, :w, :3]))
    y, u, v = planes(frame, w, h)
    return YuvaPatch(y, u, v, like.alpha_y, like.alpha_c, like.opaque)


def mix(a: YuvaPatch, b: YuvaPatch, t: float) -> YuvaPatch:
    """(1 - t) * a + t * b: a crossfade of two patches of one size, so that blending it over
    anything gives (1 - t) * (a over it) + t * (b over it). yuv is linear in rgb, so this is
    the rgb crossfade up to rounding. Patches that share their alpha planes mix plane by plane;
    different alphas mix premultiplied (no dark fringe where one of them is transparent)."""
    w = int(round(min(1.0, max(0.0, t)) * 256))
    if a.alpha_y is b.alpha_y:
        def plane(p: np.ndarray, q: np.ndarray) -> np.ndarray:
            return ((p.astype(np.uint32) * (256 - w) + q.astype(np.uint32) * w + 128) >> 8).astype(np.uint8)
        return YuvaPatch(plane(a.y, b.y), plane(a.u, b.u), plane(a.v, b.v), a.alpha_y, a.alpha_c,
                         a.opaque and b.opaque)
    alpha_y = (a.alpha_y.astype(np.uint32) * (256 - w) + b.alpha_y.astype(np.uint32) * w + 128) >> 8
    alpha_c = (a.alpha_c.astype(np.uint32) * (256 - w) + b.alpha_c.astype(np.uint32) * w + 128) >> 8

    def premultiplied(p, q, pa, qa, alpha) -> np.ndarray:
        weighted = p.astype(np.float32) * pa * (256 - w) + q.astype(np.float32) * qa * w
        return np.clip(weighted / (np.maximum(alpha, 1) * 256.0) + 0.5, 0, 255).astype(np.uint8)

    y = premultiplied(a.y, b.y, a.alpha_y, b.alpha_y, alpha_y)
    u = premultiplied(a.u, b.u, a.alpha_c, b.alpha_c, alpha_c)
    v = premultiplied(a.v, b.v, a.alpha_c, b.alpha_c, alpha_c)
    return YuvaPatch(y, u, v, alpha_y.astype(np.uint16), alpha_c.astype(np.uint16), a.opaque and b.opaque)


def with_region(patch: YuvaPatch, rgb: np.ndarray, x: int, y: int) -> YuvaPatch:
    """A copy of `patch` with the pixels from (x, y) replaced by `rgb`; x, y and the size of
    rgb even, so only that region is converted. The alpha planes are shared."""
    h, w = rgb.shape[:2]
    region = rgb_to_yuv420(np.ascontiguousarray(rgb))
    ry, ru, rv = planes(region, w, h)
    out = YuvaPatch(patch.y.copy(), patch.u.copy(), patch.v.copy(), patch.alpha_y, patch.alpha_c,
                    patch.opaque)
    out.y[y:y + h, x:x + w] = ry
    out.u[y // 2:(y + h) // 2, x // 2:(x + w) // 2] = ru
    out.v[y // 2:(y + h) // 2, x // 2:(x + w) // 2] = rv
    return out


def blend(frame: np.ndarray, width: int, height: int, patch: YuvaPatch, x: int, y: int) -> None:
    """Alpha-blend patch into the yuv420p frame at (x, y) (even), clipped to the canvas."""
    x, y = x // 2 * 2, y // 2 * 2
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + patch.width, width), min(y + patch.height, height)
    if x1 <= x0 or y1 <= y0:
        return
    py0, px0 = y0 - y, x0 - x
    ph, pw = y1 - y0, x1 - x0
    fy, fu, fv = planes(frame, width, height)
    _blend_plane(fy[y0:y1, x0:x1], patch.y[py0:py0 + ph, px0:px0 + pw],
                 patch.alpha_y[py0:py0 + ph, px0:px0 + pw], patch.opaque)
    cy0, cx0, ch, cw = y0 // 2, x0 // 2, ph // 2, pw // 2
    ac = patch.alpha_c[py0 // 2:py0 // 2 + ch, px0 // 2:px0 // 2 + cw]
    _blend_plane(fu[cy0:cy0 + ch, cx0:cx0 + cw], patch.u[py0 // 2:py0 // 2 + ch, px0 // 2:px0 // 2 + cw], ac, patch.opaque)
    _blend_plane(fv[cy0:cy0 + ch, cx0:cx0 + cw], patch.v[py0 // 2:py0 // 2 + ch, px0 // 2:px0 // 2 + cw], ac, patch.opaque)


def _blend_plane(dst: np.ndarray, src: np.ndarray, alpha: np.ndarray, opaque: bool) -> None:
    if opaque:
        dst[:] = src
        return
    mixed = src.astype(np.uint16) * alpha + dst.astype(np.uint16) * (256 - alpha)
    dst[:] = (mixed >> 8).astype(np.uint8)
