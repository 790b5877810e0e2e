"""The `ratecontrol:` config section: whether the bitrate follows the link, and the knobs.

    ratecontrol:
      enabled: true              # false: fixed bitrate (video.bitrate_kbps), the baseline
      tick_ms: 100               # how often the link is sampled
      start_kbps: 1500           # first bitrate (default: video.bitrate_kbps, the ceiling)
      max_fps_divisor: 4         # deepest frame-rate cut; below it one picture a second
      high_delay_ms: 120         # queueing delay that means overuse
      emergency_delay_ms: 300    # still growing past this: skip frames at once
      drain_time_s: 1.5          # a cut drains the standing queue within this time
      capacity_margin: 0.92      # hold at this share of the measured link capacity
      tcp_notsent_lowat_kb: 64   # RTMP: unsent bytes the kernel may hold (0: no limit)
      trace: trace.csv           # optional: one CSV row per tick (step tests, debugging)

Floor and ceiling are video.min_bitrate_kbps and video.bitrate_kbps; audio.bitrate_kbps is
counted in the link budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from broadcaster.config import AudioSettings, VideoSettings
from broadcaster.ratecontrol.tuning import RateControlConfig
from broadcaster.schema import Section

KEYS = ("enabled", "tick_ms", "start_kbps", "max_fps_divisor", "high_delay_ms",
        "emergency_delay_ms", "drain_time_s", "capacity_margin", "tcp_notsent_lowat_kb", "trace")


@dataclass(frozen=True)
class RateControlSettings:
    enabled: bool
    tick_s: float
    controller: RateControlConfig
    tcp_notsent_lowat: int | None      # bytes, None = leave the socket alone
    trace: Path | None


def ratecontrol_settings(data, source: str, video: VideoSettings, audio: AudioSettings,
                         base_dir: Path | None = None) -> RateControlSettings:
    """Validate the section; every error names the file and the key (ratecontrol.KEY)."""
    sec = Section(data, source, "ratecontrol")
    sec.allow_only(KEYS)
    ceiling, floor = video.bitrate_kbps, video.min_bitrate_kbps
    start = sec.integer("start_kbps", ceiling, minimum=floor, maximum=ceiling) \
        if sec.has("start_kbps") else None
    high = sec.number("high_delay_ms", 120.0, minimum=20, maximum=5000)
    emergency = sec.number("emergency_delay_ms", 300.0, minimum=50, maximum=10000)
    if emergency <= high:
        raise sec.error("emergency_delay_ms", f"must be above high_delay_ms ({high:g}), got {emergency:g}")
    margin = sec.number("capacity_margin", 0.92, minimum=0.5, maximum=1.0)
    controller = RateControlConfig(
        floor_kbps=floor, ceiling_kbps=ceiling, start_kbps=start, audio_kbps=audio.bitrate_kbps,
        max_fps_divisor=sec.integer("max_fps_divisor", 4, minimum=1, maximum=12),
        low_delay_ms=min(40.0, high / 3), high_delay_ms=high, emergency_delay_ms=emergency,
        probe_fail_delay_ms=min(70.0, high * 0.6),
        drain_time_s=sec.number("drain_time_s", 1.5, minimum=0.2, maximum=10),
        capacity_margin=margin, min_capacity_margin=min(0.84, margin),
    )
    lowat = sec.integer("tcp_notsent_lowat_kb", 64, minimum=0, maximum=65536)
    trace = None
    if sec.has("trace"):
        trace = Path(sec.text("trace"))
        if not trace.is_absolute() and base_dir is not None:
            trace = base_dir / trace
    return RateControlSettings(
        enabled=sec.boolean("enabled", True),
        tick_s=sec.integer("tick_ms", 100, minimum=20, maximum=1000) / 1000.0,
        controller=controller,
        tcp_notsent_lowat=lowat * 1024 if lowat else None,
        trace=trace,
    )
