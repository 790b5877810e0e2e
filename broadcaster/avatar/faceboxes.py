"""One face box per clip frame: detected once from the clip itself, smoothed over time, and
cached next to the clip so a restart does not detect again.

Precedence: a `face_box` in the scene (the same box for every frame), then a box file the
user wrote next to the clip (`presenter.boxes.json`), then the detection cache
(`presenter.faces.json`, keyed by the clip's size and mtime), then detection. Boxes are
(x0, y0, x1, y1) in the clip's own pixels. Detection runs on every `step`-th frame; frames
between and frames where no face was found are interpolated, then a centred moving average
takes out the detector's jitter.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]
CACHE_VERSION = 1


def box_file(clip: Path) -> Path:
    """Boxes written by the user for this clip: they override detection."""
    return clip.with_name(clip.stem + ".boxes.json")


def cache_file(clip: Path) -> Path:
    return clip.with_name(clip.stem + ".faces.json")


def clip_key(clip: Path) -> dict:
    st = clip.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def fill_missing(boxes: Sequence[Box | None]) -> list[Box]:
    """Linear interpolation over frames without a box (ends take the nearest box)."""
    known = [i for i, b in enumerate(boxes) if b is not None]
    if not known:
        raise ValueError("no face found in any frame")
    arr = np.array([boxes[i] for i in known], np.float64)
    idx = np.arange(len(boxes))
    cols = [np.interp(idx, known, arr[:, k]) for k in range(4)]
    return [tuple(int(round(c[i])) for c in cols) for i in idx]  # type: ignore[misc]


def smooth(boxes: Sequence[Box], window: int) -> list[Box]:
    """Centred moving average over `window` frames (edges use the frames they have)."""
    if window <= 1 or len(boxes) < 2:
        return [tuple(int(v) for v in b) for b in boxes]  # type: ignore[misc]
    arr = np.asarray(boxes, np.float64)
    half = window // 2
    out = []
    for i in range(len(arr)):
        lo, hi = max(0, i - half), min(len(arr), i + half + 1)
        out.append(tuple(int(round(v)) for v in arr[lo:hi].mean(axis=0)))
    return out  # type: ignore[return-value]


FramesAt = Callable[[Sequence[int]], Iterable[tuple[int, np.ndarray]]]


def detect_boxes(n_frames: int, frames_at: FramesAt, detect: Callable[[np.ndarray], Box | None],
                 step: int = 2, window: int = 5) -> list[Box]:
    """Run `detect` on every step-th frame (and the last), fill the gaps, smooth.
    frames_at(indices) yields (index, frame) for those frames, one at a time."""
    raw: list[Box | None] = [None] * n_frames
    wanted = sorted(set(range(0, n_frames, max(1, step))) | {n_frames - 1})
    for i, frame in frames_at(wanted):
        raw[i] = detect(frame)
    return smooth(fill_missing(raw), window)


def _valid(box, width: int, height: int) -> bool:
    return (isinstance(box, (list, tuple)) and len(box) == 4
            and all(isinstance(v, int) and not isinstance(v, bool) for v in box)
            and 0 <= box[0] < box[2] <= width and 0 <= box[1] < box[3] <= height)


def read_box_file(path: Path, n_frames: int, width: int, height: int) -> list[Box]:
    """A user's box file: {"boxes": [[x0, y0, x1, y1], ...]} with one box per clip frame (at
    the broadcast's frame rate) or a single box for all."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not readable JSON ({exc})") from None
    boxes = data.get("boxes") if isinstance(data, dict) else None
    if not isinstance(boxes, list) or len(boxes) not in (1, n_frames):
        raise ValueError(f"{path}: 'boxes' must be a list of 1 or {n_frames} boxes [x0, y0, x1, y1]")
    for i, box in enumerate(boxes):
        if not _valid(box, width, height):
            raise ValueError(f"{path}: boxes[{i}] = {box} is not [x0, y0, x1, y1] inside the "
                             f"clip's {width}x{height} frame")
    return [tuple(b) for b in boxes] * (n_frames if len(boxes) == 1 else 1)  # type: ignore[misc]


def read_cache(clip: Path, n_frames: int, width: int, height: int) -> list[Box] | None:
    """The cached boxes when they belong to this very clip file (same size and mtime)."""
    path = cache_file(clip)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION \
            or data.get("clip") != clip_key(clip) or data.get("frames") != n_frames:
        return None
    boxes = data.get("boxes")
    if not isinstance(boxes, list) or len(boxes) != n_frames \
            or not all(_valid(b, width, height) for b in boxes):
        return None
    return [tuple(b) for b in boxes]  # type: ignore[misc]


def write_cache(clip: Path, boxes: Sequence[Box]) -> None:
    """Write the cache atomically; a read-only folder only costs a detection at the next start."""
    path = cache_file(clip)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    body = {"version": CACHE_VERSION, "clip": clip_key(clip), "frames": len(boxes),
            "boxes": [list(b) for b in boxes]}
    try:
        tmp.write_text(json.dumps(body))
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("face boxes of %s not cached (%s): they are detected again at the next start",
                    clip.name, exc.strerror or exc)
        tmp.unlink(missing_ok=True)


def clip_face_boxes(clip: Path, n_frames: int, width: int, height: int, frames_at: FramesAt,
                    detect: Callable[[np.ndarray], Box | None],
                    face_box: Sequence[int] | None = None) -> tuple[list[Box], str]:
    """The boxes for every one of the clip's `n_frames` (width x height) frames and where they
    came from (for the log); frames_at (see detect_boxes) is read only to detect."""
    if face_box is not None:
        box = tuple(int(v) for v in face_box)
        if not _valid(list(box), width, height):
            raise ValueError(f"anchor face_box {list(box)} does not lie inside {clip} ({width}x{height})")
        return [box] * n_frames, "the scene's face_box"  # type: ignore[list-item]
    user = box_file(clip)
    if user.is_file():
        return read_box_file(user, n_frames, width, height), user.name
    cached = read_cache(clip, n_frames, width, height)
    if cached is not None:
        return cached, cache_file(clip).name
    try:
        boxes = detect_boxes(n_frames, frames_at, detect)
    except ValueError:
        raise ValueError(f"no face found in {clip}: set the anchor's face_box in the scene or "
                         f"write {user.name}") from None
    write_cache(clip, boxes)
    return boxes, "detection"
