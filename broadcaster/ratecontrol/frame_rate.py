"""The frame-rate divisor: the fast actuator, and the picture below the floor.

libx264 (ultrafast, in-process) shows a new bitrate only 0.1-0.25 s after it is set, so a
queue still growing past `emergency_delay_ms` also gets frame skipping, which acts on the
next frame, until the queue is back under high_delay_ms. When even the floor does not fit,
the bitrate goes below it with fewer frames (each keeps floor quality, down to
1/`max_fps_divisor`). Audio only is for a link whose known capacity cannot carry the
smallest picture (floor/max_fps_divisor) besides the audio: a deep cut on a link known to
carry it keeps the picture moving at the lowest frame rate. Pure: measurements and `now` in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from broadcaster.ratecontrol.overuse import QueueReading
from broadcaster.ratecontrol.tuning import RateControlConfig


@dataclass(frozen=True)
class Pictures:
    """How the picture goes out at one video bitrate."""

    fps_divisor: int
    drop_video: bool        # audio only (the publisher still sends one picture a second)
    below_floor: bool       # the frame rate is cut because the floor does not fit


class FrameRate:
    """The emergency divisor and the below-floor hysteresis; see the module docstring."""

    def __init__(self, config: RateControlConfig) -> None:
        self.config = config
        self.emergency_divisor = 1
        self.below_floor = False

    def emergency(self, queue: QueueReading, expected: float, fresh_capacity: float | None) -> bool:
        """Skip enough frames to bring what we send (expected, link kbps) under what drains
        while the queue grows past emergency_delay_ms; True while that lasts."""
        c = self.config
        if queue.delay_ms > c.emergency_delay_ms and queue.growing:
            need = 2
            if fresh_capacity is not None and fresh_capacity > 0:
                need = math.ceil(expected / fresh_capacity)
            self.emergency_divisor = min(c.max_fps_divisor, max(2, need, self.emergency_divisor))
            return True
        if queue.delay_ms < c.high_delay_ms:
            self.emergency_divisor = 1
        return False

    def pictures(self, video_kbps: float, carries_smallest: bool) -> Pictures:
        """The divisor (and audio only) for a video bitrate; carries_smallest: the capacity
        known carries the smallest picture besides the audio."""
        c = self.config
        divisor = self.emergency_divisor
        drop_video = False
        # (hysteresis: once below the floor, whole frame rate only back nearer the floor, or
        # a link right at the floor would flip the frame rate every few seconds)
        tolerance = (1 + c.floor_tolerance) / 2 if self.below_floor else c.floor_tolerance
        self.below_floor = video_kbps < c.floor_kbps * tolerance
        if self.below_floor:
            need = max(1, math.ceil(c.floor_kbps / max(video_kbps, 1e-6)))
            divisor = max(divisor, min(c.max_fps_divisor, need))
            drop_video = video_kbps < self.smallest_video_kbps and not carries_smallest
        return Pictures(fps_divisor=divisor, drop_video=drop_video, below_floor=self.below_floor)

    @property
    def smallest_video_kbps(self) -> float:
        """The smallest picture: floor quality at the deepest frame-rate cut (video kbps)."""
        return self.config.floor_kbps / self.config.max_fps_divisor
