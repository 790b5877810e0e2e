"""Media files: write a WAV; decode what was sent (with PyAV) and measure it: codecs, size,
fps, keyframes, pts gaps."""

from __future__ import annotations

import wave
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np


def write_wav(path: Path, samples: np.ndarray, rate: int, channels: int = 1) -> Path:
    """16-bit PCM; samples interleaved when channels > 1."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


@dataclass
class StreamReport:
    video_codec: str = ""
    audio_codec: str = ""
    width: int = 0
    height: int = 0
    profile: str = ""
    audio_rate: int = 0
    audio_channels: int = 0
    video_pts: list = field(default_factory=list)      # seconds, decode order
    keyframes: list = field(default_factory=list)      # seconds
    audio_pts: list = field(default_factory=list)
    audio_durations: list = field(default_factory=list)
    frames_decoded: int = 0
    audio_rms: list = field(default_factory=list)      # per decoded audio frame

    @property
    def fps(self) -> float:
        d = np.diff(sorted(self.video_pts))
        return float(1.0 / np.median(d)) if len(d) else 0.0

    @property
    def video_duration(self) -> float:
        pts = sorted(self.video_pts)
        return pts[-1] - pts[0] + (1.0 / self.fps if self.fps else 0.0)

    @property
    def audio_duration(self) -> float:
        return self.audio_pts[-1] - self.audio_pts[0] + self.audio_durations[-1]

    def max_video_gap(self) -> float:
        return float(np.max(np.diff(sorted(self.video_pts))))

    def max_audio_gap(self) -> float:
        starts = np.array(self.audio_pts)
        ends = starts + np.array(self.audio_durations)
        return float(np.max(starts[1:] - ends[:-1])) if len(starts) > 1 else 0.0

    def max_keyframe_interval(self) -> float:
        k = sorted(self.keyframes)
        return float(np.max(np.diff(k))) if len(k) > 1 else float("inf")


def probe(path: Path | str, decode_audio: bool = False, decode_video: bool = True) -> StreamReport:
    """Packets' timestamps (and decoded frames unless decode_video is False: frames_decoded
    then stays 0) of a media file."""
    report = StreamReport()
    with av.open(str(path)) as container:
        vstreams, astreams = container.streams.video, container.streams.audio
        if vstreams:
            vs = vstreams[0]
            report.video_codec = vs.codec_context.name
            report.width, report.height = vs.codec_context.width, vs.codec_context.height
            report.profile = vs.codec_context.profile or ""
        if astreams:
            a = astreams[0]
            report.audio_codec = a.codec_context.name
            report.audio_rate = a.codec_context.sample_rate
            report.audio_channels = a.codec_context.channels
        for packet in container.demux():
            if packet.pts is None or packet.size == 0:
                continue
            t = float(packet.pts * packet.time_base)
            if packet.stream.type == "video":
                report.video_pts.append(t)
                if packet.is_keyframe:
                    report.keyframes.append(t)
                if decode_video:
                    report.frames_decoded += len(packet.decode())
            elif packet.stream.type == "audio":
                report.audio_pts.append(t)
                dur = float(packet.duration * packet.time_base) if packet.duration else 1024 / report.audio_rate
                report.audio_durations.append(dur)
                if decode_audio:
                    for frame in packet.decode():
                        pcm = frame.to_ndarray()
                        report.audio_rms.append(float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))))
    return report


def decode_frames_and_audio(path, region: tuple[slice, slice] | None = None):
    """Per video frame: (pts, rgb); per audio frame: (pts, mono float samples). region
    (rows, columns) keeps only that part of each picture (a long recording fits in memory)."""
    frames, audio = [], []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            rgb = f.to_ndarray(format="rgb24")
            frames.append((float(f.pts * f.time_base), rgb if region is None else rgb[region].copy()))
    with av.open(str(path)) as c:
        for f in c.decode(audio=0):
            audio.append((float(f.pts * f.time_base), f.to_ndarray().mean(axis=0)))
    return frames, audio


def audio_rms_per_frame(audio, frame_pts, fps):
    """RMS of the audio (48 kHz, from decode_frames_and_audio) during each video frame."""
    starts = np.array([a[0] for a in audio])
    samples = np.concatenate([a[1] for a in audio])
    t0, rate = starts[0], 48000
    out = []
    for pts in frame_pts:
        i = int(round((pts - t0) * rate))
        chunk = samples[max(i, 0):max(i, 0) + rate // fps]
        out.append(float(np.sqrt(np.mean(chunk ** 2))) if len(chunk) else 0.0)
    return np.array(out)


def speech_band_energy(pcm: np.ndarray, rate: int) -> float:
    """The share of the signal's energy between 100 Hz and 4 kHz (speech: most of it)."""
    spec = np.abs(np.fft.rfft(pcm)) ** 2
    freqs = np.fft.rfftfreq(len(pcm), 1 / rate)
    return float(spec[(freqs > 100) & (freqs < 4000)].sum() / max(spec.sum(), 1e-12))


def decode_mono(path, rate: int) -> np.ndarray:
    """A file's first audio stream as mono float32 at `rate`, through the broadcaster's own
    decoder and swresample resampler."""
    from broadcaster.tts.levels import decode_mono as decode_native, resample_to_broadcast
    pcm, native_rate = decode_native(str(path))
    return resample_to_broadcast(pcm, native_rate, rate)


def find_offset(recording: np.ndarray, reference: np.ndarray, rate: int, within_s: float) -> tuple[float, float]:
    """Where `reference` lies in `recording` (same rate): (seconds it starts later, which may be
    negative, searched within ±within_s; normalised correlation there, 1.0 = same shape)."""
    n = 1 << int(np.ceil(np.log2(len(recording) + len(reference))))
    cc = np.fft.irfft(np.fft.rfft(recording, n) * np.conj(np.fft.rfft(reference, n)), n)
    span = int(within_s * rate)
    lags = np.concatenate([np.arange(0, span + 1), np.arange(-span, 0)])
    lag = int(lags[np.argmax(cc[lags])])
    start = max(lag, 0)
    ref = reference[max(-lag, 0):][:len(recording) - start]
    seg = recording[start:start + len(ref)]
    corr = float(seg @ ref / (np.linalg.norm(seg) * np.linalg.norm(ref) + 1e-12))
    return lag / rate, corr
