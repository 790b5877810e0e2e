"""Wav2Lip adapter for a user-supplied wav2lip / wav2lip_gan ONNX export.

Model contract (as exported from Rudrabha/Wav2Lip): inputs mel (B, 1, 80, 16) and faces
(B, 6, 96, 96) = [face with lower half zeroed, reference face] in BGR / 255; output (B, 3, 96, 96)
BGR in [0, 1]. Input names are read from the session (the first 4-D input whose 2nd dim is 1 is
the mel). The face is a still image from the scene; the predicted face's lower half is pasted
back through a feathered mask (mouth_paste.py: only the lower half of the box is touched).

Live rendering sees only audio already on air, so each frame uses the 16 mel frames (200 ms)
that END at this frame; Wav2Lip's offline recipe (render_clip) uses the window that starts at
the frame. Silent frames skip inference and show the still image: idle is the portrait.
"""
from __future__ import annotations

import functools
import logging
from collections import deque
from pathlib import Path
from typing import Sequence

import av
import cv2
import numpy as np

from broadcaster.avatar.mouth_paste import FACE_SIZE, MouthPaster, prediction_mouth
from broadcaster.avatar.onnx_session import open_session
from broadcaster.avatar.wav2lip_mel import MEL_STEP, SAMPLE_RATE, mel_chunks, melspectrogram
from broadcaster.tts.levels import resample_to_broadcast

log = logging.getLogger(__name__)

BROADCAST_RATE = 48_000
FACE_PADS = (0, 10, 0, 0)  # top, bottom, left, right, as Wav2Lip's inference.py default


@functools.lru_cache(maxsize=1)
def _face_cascade():
    haar_dir = getattr(getattr(cv2, "data", None), "haarcascades", None)
    xml = Path(haar_dir or "") / "haarcascade_frontalface_default.xml"
    if not hasattr(cv2, "CascadeClassifier") or not xml.is_file():
        return None
    return cv2.CascadeClassifier(str(xml))


def find_face(image_rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """Largest frontal face (x0, y0, x1, y1) with OpenCV's shipped Haar cascade, or None."""
    cascade = _face_cascade()
    if cascade is None:
        raise ValueError(
            f"this OpenCV ({cv2.__version__}) ships no Haar cascade to find the face: set the "
            "anchor's face_box in the scene (or install opencv-python-headless<5)")
    gray = cv2.cvtColor(np.ascontiguousarray(image_rgb[..., :3]), cv2.COLOR_RGB2GRAY)
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(48, 48))
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return int(x), int(y), int(x + w), int(y + h)


def detect_face_box(image_rgb: np.ndarray, source: str = "image") -> tuple[int, int, int, int]:
    """Largest frontal face (x0, y0, x1, y1); ValueError naming `source` when none is found."""
    try:
        box = find_face(image_rgb)
    except ValueError as exc:
        raise ValueError(f"no face box given for {source} and {exc}") from None
    if box is None:
        raise ValueError(f"no face found in {source}: set the anchor's face_box in the scene")
    return box


class Wav2LipModel:
    """The ONNX session plus the batched call. Only the lower half of a prediction is ever
    used (the mouth), so the graph is trimmed to compute that (lower_half.py): the same
    numbers there, about two thirds of the time on a CPU; the upper half comes back zero."""

    def __init__(self, model_path: str | Path, *, intra_op_threads: int = 1, prefer_gpu: bool = True) -> None:
        self.rows_computed = 1.0      # the share of the decoder's rows the session computes
        self.session = open_session(model_path, intra_op_threads=intra_op_threads, prefer_gpu=prefer_gpu,
                                    purpose="wav2lip", rewrite=self._mouth_only)
        inputs = self.session.get_inputs()
        if len(inputs) != 2:
            raise ValueError(f"wav2lip model {model_path}: expected 2 inputs (mel, faces), found {len(inputs)}")
        mel = [i for i in inputs if len(i.shape) == 4 and i.shape[1] == 1]
        face = [i for i in inputs if len(i.shape) == 4 and i.shape[1] == 6]
        if len(mel) != 1 or len(face) != 1:
            raise ValueError(f"wav2lip model {model_path}: inputs {[(i.name, i.shape) for i in inputs]} "
                             "are not mel (B,1,80,16) and faces (B,6,96,96)")
        self.mel_name, self.face_name = mel[0].name, face[0].name

    def _mouth_only(self, model_bytes: bytes) -> bytes:
        """The model trimmed to the rows of the mouth, or as it is where it cannot be."""
        try:
            from broadcaster.avatar.lower_half import trim_to_lower_half
            trimmed, self.rows_computed = trim_to_lower_half(model_bytes, FACE_SIZE)
        except Exception as exc:   # no onnx package, or a graph it cannot read: all of it runs
            log.info("wav2lip model runs whole, not trimmed to the mouth (%s: %s)",
                     exc.__class__.__name__, exc)
            return model_bytes
        log.info("wav2lip model trimmed to the mouth: its decoder computes %.0f%% of its rows",
                 self.rows_computed * 100)
        return trimmed

    def infer(self, mels: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """mels (B, 80, 16), faces (B, 6, 96, 96) float32 -> (B, 3, 96, 96) in [0, 1]; only
        the lower half (the mouth) is computed, the upper half is zero."""
        (out,) = self.session.run(None, {self.mel_name: mels[:, None].astype(np.float32),
                                         self.face_name: faces.astype(np.float32)})
        return out


def face_input(face_rgb96: np.ndarray) -> np.ndarray:
    """(6, 96, 96): Wav2Lip's [masked, reference] stack in BGR / 255."""
    bgr = face_rgb96[..., ::-1].astype(np.float32) / 255.0
    masked = bgr.copy()
    masked[FACE_SIZE // 2:] = 0.0
    return np.concatenate([masked, bgr], axis=2).transpose(2, 0, 1)


class Wav2LipAnchor:
    """An AnchorRenderer: a still portrait whose mouth a Wav2Lip model moves."""

    static = False

    def __init__(self, width: int, height: int, *, image: str | Path, model: str | Path,
                 face_box: Sequence[int] | None = None, fps: float = 20.0, silence_dbfs: float = -50.0,
                 intra_op_threads: int = 1, prefer_gpu: bool = True) -> None:
        self.width, self.height, self.fps = width, height, fps
        src = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
        if src is None:
            raise ValueError(f"anchor image {image} is missing or unreadable")
        src = cv2.cvtColor(src, cv2.COLOR_BGRA2RGBA if src.shape[-1] == 4 else cv2.COLOR_BGR2RGBA)
        self.model = Wav2LipModel(model, intra_op_threads=intra_op_threads, prefer_gpu=prefer_gpu)
        box = tuple(int(v) for v in face_box) if face_box is not None else detect_face_box(src, str(image))
        if len(box) != 4 or not (0 <= box[0] < box[2] <= src.shape[1] and 0 <= box[1] < box[3] <= src.shape[0]):
            raise ValueError(f"anchor face_box {box} does not lie inside {image} ({src.shape[1]}x{src.shape[0]})")
        # fit the image into the anchor rectangle (bottom-centred), map the padded face box
        f = min(width / src.shape[1], height / src.shape[0])
        fitted = cv2.resize(src, (max(1, round(src.shape[1] * f)), max(1, round(src.shape[0] * f))),
                            interpolation=cv2.INTER_AREA)
        ox, oy = (width - fitted.shape[1]) // 2, height - fitted.shape[0]
        self._base = np.zeros((height, width, 4), np.uint8)
        self._base[oy:oy + fitted.shape[0], ox:ox + fitted.shape[1]] = fitted
        t, b, l, r = FACE_PADS
        x0 = max(0, int(box[0] * f) + ox - l)
        y0 = max(0, int(box[1] * f) + oy - t)
        x1 = min(width, int(box[2] * f) + ox + r)
        y1 = min(height, int(box[3] * f) + oy + b)
        if x1 - x0 < 8 or y1 - y0 < 8:
            raise ValueError(f"anchor face_box {box} is too small at {width}x{height}")
        self.face_box = (x0, y0, x1, y1)
        face96 = cv2.resize(self._base[y0:y1, x0:x1, :3], (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
        self._face = face_input(face96)
        self._paster = MouthPaster()
        self._buffers = [np.empty_like(self._base) for _ in range(2)]
        self._flip = 0
        self._silence = 10 ** (silence_dbfs / 20)
        history = int(SAMPLE_RATE * (MEL_STEP / 80.0 + 0.05))  # 200 ms window + STFT context
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        self._audio: deque[np.ndarray] = deque()
        self._audio_len = 0
        self._history = history
        self.last_inferred = False

    def _paste(self, pred: np.ndarray, frame: np.ndarray) -> None:
        self._paster.paste(prediction_mouth(pred), frame, self.face_box)

    def _resample_live(self, speech: np.ndarray) -> np.ndarray:
        """48 kHz -> 16 kHz with one resampler kept across frames (no seams between chunks)."""
        pcm = np.ascontiguousarray(speech, dtype=np.float32).reshape(1, -1)
        if pcm.size == 0:
            return np.zeros(0, np.float32)
        frame = av.AudioFrame.from_ndarray(pcm, format="flt", layout="mono")
        frame.sample_rate = BROADCAST_RATE
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)

    def _push_audio(self, speech: np.ndarray) -> np.ndarray:
        pcm16 = self._resample_live(speech)
        self._audio.append(pcm16)
        self._audio_len += len(pcm16)
        while self._audio and self._audio_len - len(self._audio[0]) >= self._history:
            self._audio_len -= len(self._audio.popleft())
        window = np.concatenate(list(self._audio)) if self._audio else np.zeros(0, np.float32)
        if len(window) < self._history:
            window = np.concatenate([np.zeros(self._history - len(window), np.float32), window])
        return window[-self._history:]

    def render(self, frame_index: int, speech: np.ndarray) -> np.ndarray:
        """RGBA (h, w, 4): the still portrait, mouth re-synthesized from the last 200 ms of audio."""
        window = self._push_audio(speech)
        self.last_inferred = float(np.sqrt(np.mean(window[-len(window) // 2:] ** 2))) > self._silence
        if not self.last_inferred:
            return self._base          # the same array: the compositor does not convert it again
        mel = melspectrogram(window)[:, -MEL_STEP:]
        pred = self.model.infer(mel[None], self._face[None])[0]
        self._flip ^= 1                # two buffers: the frame handed out is never the one painted
        frame = self._buffers[self._flip]
        np.copyto(frame, self._base)
        self._paste(pred, frame)
        return frame

    def render_clip(self, speech: np.ndarray, batch_size: int = 16) -> list[np.ndarray]:
        """Offline: frames for a whole utterance (48 kHz mono), batched, Wav2Lip's own windowing."""
        pcm16 = resample_to_broadcast(np.asarray(speech, np.float32), BROADCAST_RATE, SAMPLE_RATE)
        n_frames = max(1, int(round(len(speech) / BROADCAST_RATE * self.fps)))
        # windows start at each frame and run 200 ms ahead: pad so the last frames have audio
        pcm16 = np.concatenate([pcm16, np.zeros(int(SAMPLE_RATE * MEL_STEP / 80.0), np.float32)])
        chunks = mel_chunks(melspectrogram(pcm16), self.fps)[:n_frames]
        frames: list[np.ndarray] = []
        for i in range(0, len(chunks), batch_size):
            mels = np.stack(chunks[i:i + batch_size])
            faces = np.repeat(self._face[None], len(mels), axis=0)
            for pred in self.model.infer(mels, faces):
                frame = self._base.copy()
                self._paste(pred, frame)
                frames.append(frame)
        return frames

    def reset(self) -> None:
        """Back to the still portrait on the next frame: forget the audio history."""
        self._audio.clear()
        self._audio_len = 0
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
