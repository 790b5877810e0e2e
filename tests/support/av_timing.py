"""Timing of one recording, from its packets: how audio and video end against each other, the
largest holes, whether the timestamps advance at the rate the frame and sample counts say,
and the A/V drift window by window."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tests.support.media import StreamReport, probe

WINDOW_S = 10.0
MAX_GAPS_LISTED = 20
AAC_FRAME_SAMPLES = 1024    # every AAC-LC packet holds this many samples (FLV rounds its durations to ms)


@dataclass
class RecordingTiming:
    path: str
    video_frames: int = 0
    audio_packets: int = 0
    duration_s: float = 0.0
    fps: float = 0.0
    av_start_offset_ms: float = 0.0     # first video pts - first audio pts
    av_end_offset_ms: float = 0.0       # video end - audio end (each: last pts + duration)
    max_video_gap_ms: float = 0.0       # largest step between consecutive video pts
    max_audio_gap_ms: float = 0.0       # largest hole between one audio packet's end and the next
    video_rate: float = 0.0             # pts span / (frames / fps): 1.0 when no frame is missing
    audio_rate: float = 0.0             # pts span / (samples / rate): 1.0 when no sample is missing
    max_drift_ms: float = 0.0           # largest |audio time - video time| at a window's end
    drift_ms: list = field(default_factory=list)   # per WINDOW_S window: audio end - video end
    audio_pts_drift_ms: float = 0.0     # largest |audio pts - the time its sample count says|
    video_gaps: list = field(default_factory=list)  # [pts s, ms] of steps over two frames, largest first
    error: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _ends_at(times: np.ndarray, durations: np.ndarray, t: float) -> float:
    """The end (pts + duration) of the last packet starting at or before t."""
    i = int(np.searchsorted(times, t, side="right")) - 1
    return float(times[i] + durations[i]) if i >= 0 else float("nan")


def timing_of(report: StreamReport, path: str, window_s: float = WINDOW_S) -> RecordingTiming:
    """Figures from a probed recording (tests.support.media.probe)."""
    out = RecordingTiming(path)
    video = np.array(sorted(report.video_pts))
    audio = np.array(report.audio_pts)
    audio.sort()
    if report.audio_codec == "aac" and report.audio_rate:
        audio_d = np.full(len(audio), AAC_FRAME_SAMPLES / report.audio_rate)
    else:
        audio_d = np.array(report.audio_durations)[np.argsort(report.audio_pts)]
    out.video_frames, out.audio_packets = len(video), len(audio)
    if len(video) < 2 or len(audio) < 2:
        out.error = f"too short: {len(video)} video and {len(audio)} audio packets"
        return out
    out.fps = report.fps
    frame = 1.0 / out.fps
    video_d = np.full(len(video), frame)
    video_end, audio_end = video[-1] + frame, audio[-1] + audio_d[-1]
    out.duration_s = round(float(max(video_end, audio_end) - min(video[0], audio[0])), 3)
    out.av_start_offset_ms = round(float(video[0] - audio[0]) * 1000, 1)
    out.av_end_offset_ms = round(float(video_end - audio_end) * 1000, 1)
    out.max_video_gap_ms = round(report.max_video_gap() * 1000, 1)
    steps = np.diff(video)
    big = np.argsort(steps)[::-1][:MAX_GAPS_LISTED]
    out.video_gaps = [[round(float(video[i]), 3), round(float(steps[i]) * 1000, 1)]
                      for i in big if steps[i] > 2 * frame]
    out.max_audio_gap_ms = round(report.max_audio_gap() * 1000, 1)
    out.video_rate = round(float(video_end - video[0]) / (len(video) * frame), 5)
    out.audio_rate = round(float(audio_end - audio[0]) / float(audio_d.sum()), 5)
    start = max(video[0], audio[0])
    for t in np.arange(start + window_s, min(video_end, audio_end), window_s):
        drift = _ends_at(audio, audio_d, t) - _ends_at(video, video_d, t)
        out.drift_ms.append(round(drift * 1000, 1))
    # each end is quantised to its own packet (a frame, an AAC packet): the drift is the part
    # beyond that, the largest over the windows
    out.max_drift_ms = max((abs(d) for d in out.drift_ms), default=0.0)
    # audio timestamps against the samples before each packet: a clock that slips shows here
    by_count = audio[0] + np.concatenate([[0.0], np.cumsum(audio_d[:-1])])
    out.audio_pts_drift_ms = round(float(np.max(np.abs(audio - by_count))) * 1000, 1)
    return out


def recording_timing(path: Path | str, window_s: float = WINDOW_S) -> RecordingTiming:
    """Probe a recording (packets only) and measure it; a recording that cannot be read is
    reported with its error."""
    try:
        report = probe(path, decode_video=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a finding, not a crash
        return RecordingTiming(str(path), error=f"{type(exc).__name__}: {exc}")
    return timing_of(report, str(path), window_s)
