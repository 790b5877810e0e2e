"""Microphone inputs: every source yields 16 kHz mono float32 frames of 20 ms (320 samples).

Why float32: the rest of the broadcaster uses float32 in [-1, 1]; Silero VAD and Whisper
both take float32, and Opus encoding converts to int16 at the edge (see pcm_to_int16).

Sources (each a MicSource):
- SoundDeviceSource: a sound card by name or index; a clear error listing the input devices
  when the configured one is missing; reopens with backoff when the device goes away.
- WavFileSource: any audio file PyAV reads (any rate/channels, resampled), real-time paced
  or as fast as possible.
- PcmPipeSource: raw PCM from a binary stream (stdin, a pipe, a socket file).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import BinaryIO, Iterator, Protocol

import numpy as np

from broadcaster.backoff import Backoff

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 320


class MicSource(Protocol):
    finite: bool        # the input can end by itself (a file, a pipe); a sound card cannot

    def frames(self) -> Iterator[np.ndarray]:
        """(320,) float32 frames of 20 ms at 16 kHz mono, until the input ends or fails
        (the failure is raised)."""
        ...

    def close(self) -> None: ...


class MicDeviceNotFound(RuntimeError):
    """The configured capture device is not present; the message lists the ones that are."""


def pcm_to_int16(frame: np.ndarray) -> np.ndarray:
    """float32 [-1, 1] -> int16 (clipped), for Opus and raw PCM output."""
    return (np.clip(frame, -1.0, 1.0) * 32767.0).astype(np.int16)


def int16_to_pcm(data: bytes | np.ndarray) -> np.ndarray:
    """int16 little-endian PCM -> float32 [-1, 1]."""
    arr = np.frombuffer(data, dtype="<i2") if isinstance(data, (bytes, bytearray, memoryview)) else data
    return arr.astype(np.float32) / 32768.0


class _Framer:
    """Cut an arbitrary stream of float32 samples into exact 320-sample frames."""

    def __init__(self) -> None:
        self._buf = np.zeros(0, np.float32)

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        # Clipped: FFmpeg's stereo->mono downmix and resampling can overshoot full scale.
        self._buf = np.concatenate([self._buf, np.clip(samples.astype(np.float32, copy=False), -1.0, 1.0)])
        n = len(self._buf) // FRAME_SAMPLES
        out = [self._buf[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES].copy() for i in range(n)]
        self._buf = self._buf[n * FRAME_SAMPLES:]
        return out

    def flush(self) -> list[np.ndarray]:
        """The last partial frame, zero-padded (so no speech is lost at the end of a file)."""
        if len(self._buf) == 0:
            return []
        frame = np.zeros(FRAME_SAMPLES, np.float32)
        frame[:len(self._buf)] = self._buf
        self._buf = np.zeros(0, np.float32)
        return [frame]


class MonoResampler:
    """Stateful float32 mono resampler to 16 kHz (PyAV/libswresample), for odd-rate inputs."""

    def __init__(self, in_rate: int) -> None:
        import av
        self.in_rate = in_rate
        self._rs = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        self._pts = 0

    def push(self, mono: np.ndarray) -> np.ndarray:
        import av
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(mono, np.float32).reshape(1, -1),
                                           format="flt", layout="mono")
        frame.sample_rate = self.in_rate
        frame.pts = self._pts
        self._pts += len(mono)
        return self._collect(self._rs.resample(frame))

    def flush(self) -> np.ndarray:
        return self._collect(self._rs.resample(None))

    @staticmethod
    def _collect(outs) -> np.ndarray:
        if not outs:
            return np.zeros(0, np.float32)
        return np.concatenate([o.to_ndarray().reshape(-1) for o in outs]).astype(np.float32, copy=False)


class _Pacer:
    """Sleep so that frame n is released at start + n * 20 ms (real-time playback of a file)."""

    def __init__(self, realtime: bool) -> None:
        self.realtime = realtime
        self._start: float | None = None
        self._n = 0

    def wait(self) -> None:
        if not self.realtime:
            return
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._n * FRAME_MS / 1000.0
        self._n += 1
        if due > now:
            time.sleep(due - now)


class WavFileSource:
    """Frames from an audio file (WAV or anything PyAV decodes), resampled to 16 kHz mono.

    realtime=True releases one frame every 20 ms (to test live behaviour); False runs as fast
    as the consumer takes them.
    """

    finite = True

    def __init__(self, path: str, realtime: bool = False) -> None:
        import av  # local import: only file inputs need PyAV here

        self.path = str(path)
        self.realtime = realtime
        try:
            self._container = av.open(self.path)
        except (FileNotFoundError, av.FFmpegError) as exc:
            raise ValueError(f"mic input file {self.path!r}: cannot open: {exc}") from exc
        if not self._container.streams.audio:
            self._container.close()
            raise ValueError(f"mic input file {self.path!r}: no audio stream")
        self._closed = False

    def frames(self) -> Iterator[np.ndarray]:
        import av

        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        framer, pacer = _Framer(), _Pacer(self.realtime)
        stream = self._container.streams.audio[0]
        try:  # close() from another thread only sets a flag; the container is closed here
            for frame in self._container.decode(stream):
                for out in resampler.resample(frame):
                    for f in framer.push(out.to_ndarray().reshape(-1)):
                        if self._closed:
                            return
                        pacer.wait()
                        yield f
            for out in resampler.resample(None):
                for f in framer.push(out.to_ndarray().reshape(-1)):
                    pacer.wait()
                    yield f
            for f in framer.flush():
                pacer.wait()
                yield f
        except av.FFmpegError as exc:
            raise ValueError(f"mic input file {self.path!r}: decode error: {exc}") from exc
        finally:
            self._container.close()

    def close(self) -> None:
        self._closed = True


class PcmPipeSource:
    """Frames from raw PCM on a binary stream (e.g. `arecord ... | broadcaster run --mic -`).

    sample_format: "s16le" (default) or "f32le"; any sample_rate/channels (downmixed and
    resampled with PyAV when not 16 kHz mono). Ends at EOF.
    """

    finite = True

    def __init__(self, stream: BinaryIO, sample_rate: int = SAMPLE_RATE, channels: int = 1,
                 sample_format: str = "s16le", realtime: bool = False) -> None:
        if sample_format not in ("s16le", "f32le"):
            raise ValueError(f"pipe input: sample_format must be s16le or f32le, not {sample_format!r}")
        if sample_rate <= 0 or channels <= 0:
            raise ValueError(f"pipe input: bad sample_rate={sample_rate} / channels={channels}")
        self._stream = stream
        self.sample_rate, self.channels, self.sample_format = sample_rate, channels, sample_format
        self.realtime = realtime
        self._closed = False

    def _decode(self, data: bytes) -> np.ndarray:
        if self.sample_format == "s16le":
            x = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
        else:
            x = np.frombuffer(data, "<f4").astype(np.float32)
        return x.reshape(-1, self.channels).mean(axis=1)

    def frames(self) -> Iterator[np.ndarray]:
        bytes_per_sample = (2 if self.sample_format == "s16le" else 4) * self.channels
        # Read ~20 ms of input at a time, whole samples only.
        chunk = max(1, self.sample_rate * FRAME_MS // 1000) * bytes_per_sample
        resampler = MonoResampler(self.sample_rate) if self.sample_rate != SAMPLE_RATE else None
        framer, pacer = _Framer(), _Pacer(self.realtime)
        pending = b""
        while not self._closed:
            data = self._stream.read(chunk)
            if not data:
                break
            pending += data
            usable = len(pending) - len(pending) % bytes_per_sample
            if usable == 0:
                continue
            mono, pending = self._decode(pending[:usable]), pending[usable:]
            if resampler is not None:
                mono = resampler.push(mono)
            for f in framer.push(mono):
                pacer.wait()
                yield f
        if resampler is not None:
            for f in framer.push(resampler.flush()):
                yield f
        for f in framer.flush():
            yield f

    def close(self) -> None:
        self._closed = True


def list_input_devices() -> list[tuple[int, str]]:
    """(index, name) of every device with input channels, as PortAudio sees them now."""
    import sounddevice as sd
    return [(i, d["name"]) for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]


def describe_input_devices() -> str:
    devs = list_input_devices()
    if not devs:
        return "no input devices found (no sound card?); use a WAV file or '-' (raw s16le 16 kHz PCM on stdin)"
    return "available input devices: " + ", ".join(f"[{i}] {n!r}" for i, n in devs)


def resolve_input_device(device: str | int | None) -> int:
    """Index of the configured input device; MicDeviceNotFound (listing devices) when absent.

    A name matches exactly first, then as a case-insensitive substring (unique match).
    None means the system default input.
    """
    import sounddevice as sd
    devs = list_input_devices()
    if device is None:
        idx = sd.default.device[0]
        if idx is None or idx < 0 or idx not in [i for i, _ in devs]:
            raise MicDeviceNotFound(f"no default input device; {describe_input_devices()}")
        return int(idx)
    if isinstance(device, int) or (isinstance(device, str) and device.isdigit()):
        idx = int(device)
        if idx in [i for i, _ in devs]:
            return idx
        raise MicDeviceNotFound(f"mic device index {idx} is not an input device; {describe_input_devices()}")
    exact = [i for i, n in devs if n == device]
    if exact:
        return exact[0]
    partial = [i for i, n in devs if device.lower() in n.lower()]
    if len(partial) == 1:
        return partial[0]
    if len(partial) > 1:
        raise MicDeviceNotFound(f"mic device {device!r} is ambiguous; {describe_input_devices()}")
    raise MicDeviceNotFound(f"mic device {device!r} not found; {describe_input_devices()}")


def _refresh_portaudio() -> None:
    """Re-enumerate devices: PortAudio caches its device list at initialisation."""
    import sounddevice as sd
    sd._terminate()  # noqa: SLF001 - the documented way to rescan devices
    sd._initialize()  # noqa: SLF001


class SoundDeviceSource:
    """Frames from a sound card (sounddevice/PortAudio), 16 kHz mono float32, 20 ms.

    The device is resolved at construction: MicDeviceNotFound (listing devices) if missing.
    While running, a stream error, an inactive stream or no audio for stall_s closes the
    stream and reopens it with backoff (rescanning devices), so unplug/replug recovers.
    The PortAudio callback only copies into a bounded queue (queue_frames); when the consumer
    falls behind the oldest frames are dropped (counted in .dropped_frames).
    """

    finite = False

    def __init__(self, device: str | int | None = None, *, queue_frames: int = 50,
                 stall_s: float = 2.0, backoff: Backoff | None = None) -> None:
        self.device = device
        self.device_index = resolve_input_device(device)
        self.stall_s = stall_s
        self.backoff = backoff or Backoff(0.5, 2.0, 10.0)   # reopen: 0.5 s, x2, at most 10 s
        self._queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=queue_frames)
        self._stream = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.dropped_frames = 0
        self.reopen_count = 0
        self._framer = _Framer()
        self._resampler: MonoResampler | None = None

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio thread
        if status:
            log.debug("mic stream status: %s", status)
        mono = np.asarray(indata[:, 0] if indata.ndim == 2 else indata, np.float32)
        if self._resampler is not None:
            mono = self._resampler.push(mono)
        for f in self._framer.push(mono):
            try:
                self._queue.put_nowait(f)
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
                self.dropped_frames += 1
                self._queue.put_nowait(f)

    def _open(self) -> None:
        import sounddevice as sd
        with self._lock:
            self._framer = _Framer()
            self._resampler = None
            try:
                stream = sd.InputStream(device=self.device_index, channels=1, samplerate=SAMPLE_RATE,
                                        dtype="float32", blocksize=FRAME_SAMPLES, callback=self._callback)
            except sd.PortAudioError as exc:
                # Many USB/hw devices only do 44.1/48 kHz: capture at their rate and resample.
                rate = int(sd.query_devices(self.device_index)["default_samplerate"])
                if rate == SAMPLE_RATE:
                    raise
                log.info("mic: device %s refused 16 kHz (%s); capturing at %d Hz", self.device_index, exc, rate)
                self._resampler = MonoResampler(rate)
                stream = sd.InputStream(device=self.device_index, channels=1, samplerate=rate,
                                        dtype="float32", blocksize=rate * FRAME_MS // 1000, callback=self._callback)
            stream.start()
            self._stream = stream
        log.info("mic: capturing from device %s", self.device_index)

    def _close_stream(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception as exc:  # a vanished device may fail to close cleanly
                log.debug("mic: closing stream: %s", exc)

    def _reopen_with_backoff(self) -> None:
        failures = 0
        while not self._closed.is_set():
            failures += 1
            delay = self.backoff.nominal(failures - 1)
            if self._closed.wait(delay):
                return
            try:
                _refresh_portaudio()
                self.device_index = resolve_input_device(self.device)
                self._open()
                self.reopen_count += 1
                log.info("mic: device %r is back after %d attempt(s)", self.device, failures)
                return
            except Exception as exc:
                log.warning("mic: reopening %r failed (attempt %d, next in %.1fs): %s",
                            self.device, failures, self.backoff.nominal(failures), exc)

    def frames(self) -> Iterator[np.ndarray]:
        import sounddevice as sd
        try:
            self._open()
        except sd.PortAudioError as exc:
            raise MicDeviceNotFound(f"mic device {self.device!r} (index {self.device_index}) cannot be opened: "
                                    f"{exc}; {describe_input_devices()}") from exc
        last_audio = time.monotonic()
        try:
            while not self._closed.is_set():
                try:
                    frame = self._queue.get(timeout=0.1)
                    last_audio = time.monotonic()
                    yield frame
                    continue
                except queue.Empty:
                    pass
                with self._lock:
                    stream = self._stream
                stalled = time.monotonic() - last_audio > self.stall_s
                if stream is None or not stream.active or stalled:
                    log.warning("mic: device %r stopped delivering audio (%s); reopening", self.device,
                                "stalled" if stalled else "stream inactive")
                    self._close_stream()
                    self._reopen_with_backoff()
                    last_audio = time.monotonic()
        finally:
            self._close_stream()

    def close(self) -> None:
        self._closed.set()
        self._close_stream()


def open_mic_source(spec: str | int | None, *, realtime_files: bool = True):
    """Pick the input for `--mic DEVICE_OR_FILE`: '-' = raw s16le 16 kHz mono on stdin,
    an existing file path = WavFileSource, otherwise a sound-device name or index."""
    import os
    import sys
    if spec == "-":
        return PcmPipeSource(sys.stdin.buffer)
    if isinstance(spec, str) and os.path.isfile(spec):
        return WavFileSource(spec, realtime=realtime_files)
    return SoundDeviceSource(spec)
