"""A synthetic presenter clip for the video-loop anchor's tests and benchmarks: the project's
own drawn face (the puppet, rendered once) sliding sideways and back, encoded with PyAV, and
the random-weight Wav2Lip model those tests run."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def presenter_frames(width: int, height: int, n_frames: int, travel: int = 40,
                     background=(40, 60, 90)) -> tuple[list[np.ndarray], list[int]]:
    """RGB frames of a face moving `travel` px right over the clip, and each frame's shift."""
    import cv2

    from broadcaster.avatar import PuppetAnchor
    side = min(width, height)
    face = PuppetAnchor(side, side, idle_motion=False).render_params(np.zeros(7, np.float32))
    alpha = face[..., 3:4].astype(np.float32) / 255.0
    card = np.empty((side, side, 3), np.float32)
    card[:] = background
    card = (face[..., :3] * alpha + card * (1 - alpha) + 0.5).astype(np.uint8)
    frames, shifts = [], []
    for i in range(n_frames):
        dx = int(round(travel * i / max(1, n_frames - 1))) - travel // 2
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = background
        m = np.array([[1, 0, (width - side) / 2 + dx], [0, 1, height - side]], np.float32)
        frame = cv2.warpAffine(card, m, (width, height), dst=frame, borderMode=cv2.BORDER_TRANSPARENT)
        frames.append(frame)
        shifts.append(dx)
    return frames, shifts


def write_clip(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """Encode RGB frames as H.264 (near lossless, so what is decoded looks like what was drawn)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "10", "preset": "ultrafast"}
        for rgb in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def decode_clip(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def random_wav2lip(folder: Path) -> Path:
    """Wav2Lip's architecture with random weights, exported to ONNX (needs torch)."""
    from tools.export_wav2lip_random import export
    return export(folder / "wav2lip_random.onnx")


def wait_for_mouth(anchor, keys: range, timeout: float = 30.0) -> bool:
    """Whether the anchor's worker renders a mouth for one of `keys` within `timeout` s."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        if any((item := anchor.ahead.take(k)) is not None and item.mouth is not None for k in keys):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
