"""The bounded hand-off between the media loop (producer) and the encoder (consumer).

The producer never blocks. When the consumer falls behind, new slots first lose their video
(the encoder repeats the last frame, keeping the cadence); only past a hard cap is a whole
slot (audio included) dropped, and that is counted and logged by the caller.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass
class MediaSlot:
    """One frame slot of the broadcast: its video (None = repeat the last one) and its audio."""

    index: int
    video: np.ndarray | None     # yuv420p (h*3/2, w) uint8
    audio: np.ndarray            # (n, 2) float32
    lines: tuple = ()            # speech lines whose first audio is in this slot


class SlotQueue:
    def __init__(self, soft_limit: int, hard_limit: int):
        if not 0 < soft_limit <= hard_limit:
            raise ValueError("need 0 < soft_limit <= hard_limit")
        self.soft_limit, self.hard_limit = soft_limit, hard_limit
        self._items: deque[MediaSlot] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, slot: MediaSlot) -> tuple[bool, MediaSlot | None]:
        """-> (video_was_dropped, slot dropped whole because of the hard cap or None)."""
        video_dropped = False
        dropped = None
        with self._cond:
            if len(self._items) >= self.soft_limit and slot.video is not None:
                slot.video = None
                video_dropped = True
            if len(self._items) >= self.hard_limit:
                dropped = self._items.popleft()
            self._items.append(slot)
            self._cond.notify()
        return video_dropped, dropped

    def get(self, timeout: float) -> MediaSlot | None:
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)
