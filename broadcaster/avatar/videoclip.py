"""A presenter clip decoded with PyAV, frame by frame, into the anchor's frames, and the loop
that plays it.

The clip is fitted into the anchor's box (RGBA, bottom-centred like a still portrait) and
resampled to the broadcast's frame rate by timestamps. It is streamed, never held whole here:
scan_clip decodes it once to check it and count its slots, and fitted_frames decodes it again
handing out one fitted frame at a time, so whoever keeps the clip (converted, in yuv420p)
holds only that, and loading peaks near it, not at every frame in RGB and RGBA besides.
Like the image reader (broadcaster/imagefile.py) the clip is capped in size and length, and
anything that cannot be used is one ClipFileError that says why.
The loop is a ping-pong (0, 1, ..., n-1, n-2, ..., 1, 0, ...): the picture never jumps at
the seam.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import av
import cv2
import numpy as np

MAX_CLIP_PIXELS = 3840 * 2160        # per source frame
MAX_CLIP_SECONDS = 60.0              # a loop of a few seconds is the point; this caps memory
MAX_CLIP_BYTES = 1536 * 1024 * 1024  # the clip's frames at the anchor's size, as RGBA


class ClipFileError(ValueError):
    """A clip that cannot be used; the message says why, without a traceback."""


@dataclass(frozen=True)
class ClipLayout:
    """Where a clip's frames land in the anchor box, and how many broadcast slots it fills."""

    slots: int
    source_size: tuple[int, int]     # the clip's own width, height
    width: int                       # the anchor box
    height: int

    @property
    def scale(self) -> float:
        """Source px -> anchor px (aspect kept)."""
        sw, sh = self.source_size
        return min(self.width / sw, self.height / sh)

    @property
    def size(self) -> tuple[int, int]:
        sw, sh = self.source_size
        return max(1, round(sw * self.scale)), max(1, round(sh * self.scale))

    @property
    def offset(self) -> tuple[int, int]:
        """Where the scaled source's top-left lies in the anchor box (bottom-centred)."""
        w, h = self.size
        return (self.width - w) // 2, self.height - h

    def to_anchor(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A box in source pixels mapped into the anchor box."""
        f, (ox, oy) = self.scale, self.offset
        return (int(round(box[0] * f)) + ox, int(round(box[1] * f)) + oy,
                int(round(box[2] * f)) + ox, int(round(box[3] * f)) + oy)

    def fit(self, rgb: np.ndarray) -> np.ndarray:
        """One source frame as RGBA at the anchor's size (a clip already that size is kept
        bit for bit); read-only, shown as is."""
        (w, h), (ox, oy) = self.size, self.offset
        fitted = rgb if (w, h) == self.source_size else cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        out = np.zeros((self.height, self.width, 4), np.uint8)
        out[oy:oy + h, ox:ox + w, :3] = fitted
        out[oy:oy + h, ox:ox + w, 3] = 255
        out.flags.writeable = False
        return out

def pingpong(index: int, length: int) -> int:
    """The clip frame shown at loop position `index`: forward, then backward, never a jump."""
    if length <= 1:
        return 0
    period = 2 * length - 2
    i = index % period
    return i if i < length else period - i


def source_frames(path: Path, fps: float) -> Iterator[tuple[int, int, np.ndarray]]:
    """(first slot, slots, RGB frame at the clip's own size) per decoded frame that is on
    screen at one or more broadcast slot times (it fills every slot up to the next frame's
    time); one frame at a time. ClipFileError for what cannot be used."""
    path = Path(path)
    if not path.is_file():
        raise ClipFileError("file not found")
    slots = 0
    size: tuple[int, int] | None = None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ClipFileError("has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            base: float | None = None
            for frame in container.decode(stream):
                if frame.width * frame.height > MAX_CLIP_PIXELS:
                    raise ClipFileError(f"{frame.width}x{frame.height} is too large (at most "
                                        f"{MAX_CLIP_PIXELS // 1_000_000} megapixels a frame)")
                if size is not None and (frame.width, frame.height) != size:
                    raise ClipFileError(f"changes its frame size mid-clip ({size[0]}x{size[1]} -> "
                                        f"{frame.width}x{frame.height})")
                size = frame.width, frame.height
                t = float(frame.time) if frame.time is not None else slots / fps
                base = t if base is None else base
                t -= base
                if t > MAX_CLIP_SECONDS:
                    raise ClipFileError(f"is longer than {MAX_CLIP_SECONDS:.0f} s (a loop of a few "
                                        "seconds is enough; cut it)")
                # this frame is on screen from t on: it fills every slot up to the next one
                until = max(1, int(np.floor(t * fps + 1e-6)) + 1)
                if until > slots:
                    yield slots, until - slots, frame.to_ndarray(format="rgb24")
                    slots = until
    except ClipFileError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise ClipFileError(f"is not a readable video ({exc.__class__.__name__}: {exc})") from None
    if not slots:
        raise ClipFileError("holds no video frames")


def scan_clip(path: Path, fps: float, width: int, height: int) -> ClipLayout:
    """Decode `path` once, frame by frame, keeping nothing: is it usable, how many slots does
    it fill, and where does it land in a width x height anchor box."""
    slots, size = 0, (0, 0)
    for first, count, rgb in source_frames(path, fps):
        slots, size = first + count, (rgb.shape[1], rgb.shape[0])
    if slots * width * height * 4 > MAX_CLIP_BYTES:
        raise ClipFileError(f"needs {slots * width * height * 4 / 2**20:.0f} MiB decoded at "
                            f"{width}x{height}; keep it under {MAX_CLIP_BYTES // 2**20} MiB (shorter)")
    return ClipLayout(slots, size, width, height)


def fitted_frames(path: Path, fps: float, layout: ClipLayout) -> Iterator[tuple[int, int, np.ndarray]]:
    """(first slot, slots, RGBA at the anchor's size) per source frame, one at a time: the
    slots scan_clip counted (a clip that changed since is a ClipFileError)."""
    end = 0
    for first, count, rgb in source_frames(path, fps):
        if (rgb.shape[1], rgb.shape[0]) != layout.source_size or first + count > layout.slots:
            raise ClipFileError("changed while it was loaded")
        end = first + count
        yield first, count, layout.fit(rgb)
    if end != layout.slots:
        raise ClipFileError("changed while it was loaded")


def slot_frames(path: Path, fps: float, slots: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(slot, RGB frame at the clip's own size) for the wanted slots, in order, one at a time
    (face detection reads a few)."""
    wanted = sorted(set(slots))
    i = 0
    for first, count, rgb in source_frames(path, fps):
        while i < len(wanted) and wanted[i] < first + count:
            if wanted[i] >= first:
                yield wanted[i], rgb
            i += 1
        if i == len(wanted):
            return


def probe_clip(path: Path) -> str | None:
    """Why this file cannot be a clip, or None: decodes only its first frame, so loading a
    scene (and `check`) stays cheap."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return "has no video stream"
            if container.duration is not None and container.duration / av.time_base > MAX_CLIP_SECONDS:
                return (f"is longer than {MAX_CLIP_SECONDS:.0f} s (a loop of a few seconds is "
                        "enough; cut it)")
            for frame in container.decode(video=0):
                if frame.width * frame.height > MAX_CLIP_PIXELS:
                    return (f"{frame.width}x{frame.height} is too large (at most "
                            f"{MAX_CLIP_PIXELS // 1_000_000} megapixels a frame)")
                return None
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        return f"is not a readable video ({exc.__class__.__name__}: {exc})"
    return "holds no video frames"
