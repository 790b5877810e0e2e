"""The program picture as JPEG for the studio page: the compositor's latest frame, taken at
most `max_fps` times a second and encoded only when a page asks for it.

A frame is kept only while someone watched within the last `watch_s`, and it is encoded on
request (once per kept frame, shared by every page), so an unwatched broadcast pays one
comparison per tick. JPEG snapshots instead of a second video encode: the page gets the
picture within one poll interval (~0.25 s) with no extra encoder, and no HLS segmenting
delay (several seconds) on top.
"""

from __future__ import annotations

import io
import threading
import time
from typing import Callable

import numpy as np
from PIL import Image

from broadcaster.render.yuv import yuv420_to_rgb
from broadcaster.stages import Tick


class PreviewFeed:
    def __init__(self, max_fps: float = 4.0, watch_s: float = 3.0, quality: int = 70,
                 clock: Callable[[], float] = time.monotonic):
        self.interval_s = 1.0 / max_fps
        self.watch_s, self.quality, self.clock = watch_s, quality, clock
        self._watched_at = float("-inf")
        self._taken_at = float("-inf")
        self._frame: tuple[int, np.ndarray] | None = None      # (slot index, yuv420p)
        self._jpeg: tuple[int, bytes] | None = None
        self._encode_lock = threading.Lock()
        self.encoded = 0                                        # JPEGs made so far

    def on_tick(self, tick: Tick) -> None:
        """Media thread: keep a reference to the new picture when a page watches (the
        compositor makes a new array per frame, so no copy is needed)."""
        if tick.frame is None:
            return
        now = self.clock()
        if now - self._watched_at > self.watch_s or now - self._taken_at < self.interval_s:
            return
        self._taken_at = now
        self._frame = (tick.index, tick.frame)

    def watch(self) -> None:
        """A page asked for the picture: keep frames for the next watch_s."""
        self._watched_at = self.clock()

    def jpeg(self) -> tuple[int, bytes] | None:
        """(slot index, JPEG bytes) of the latest kept frame, or None before the first one.
        Blocking (a few ms of conversion and encoding): call it off the event loop."""
        self.watch()
        frame = self._frame
        if frame is None:
            return None
        index, yuv = frame
        with self._encode_lock:
            if self._jpeg is None or self._jpeg[0] != index:
                height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
                out = io.BytesIO()
                Image.fromarray(yuv420_to_rgb(yuv, width, height)).save(out, format="JPEG",
                                                                        quality=self.quality)
                self._jpeg = (index, out.getvalue())
                self.encoded += 1
            return self._jpeg
