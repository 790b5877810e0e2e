"""Counters the media path updates and the service layer reads (metrics, health, status).

Each field is written by one thread only, so plain attributes are enough.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class BroadcastStats:
    started_at: float = field(default_factory=time.monotonic)
    frames_out: int = 0              # slots encoded and sent
    frames_rendered: int = 0
    frames_repeated: int = 0         # slots whose video repeated the last frame (late render)
    frames_dropped: int = 0          # slots whose video was not sent (queue overflow)
    frames_skipped: int = 0          # slots whose video rate control left out (fps cut)
    slots_offline: int = 0           # slots discarded while no ingest was connected
    audio_samples_dropped: int = 0   # only under extreme overload; always logged
    connects: int = 0
    reconnects: int = 0
    connected: bool = False
    bytes_out: int = 0
    video_bytes_out: int = 0
    audio_bytes_out: int = 0
    bitrate_kbps: int = 0
    queue_slots: int = 0
    last_error: str = ""
    first_packet_at: float | None = None
    pts_seconds: float = 0.0
