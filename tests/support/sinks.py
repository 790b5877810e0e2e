"""A SpeechStage sink that records what it was handed, and when."""

from __future__ import annotations

import time


class TimedSink:
    """items: (monotonic time, pcm, caption, line_id) per push; cuts: how many cut() calls."""

    def __init__(self):
        self.items = []
        self.cuts = 0

    def push(self, pcm, caption, line_id):
        self.items.append((time.monotonic(), pcm, caption, line_id))

    def cut(self, fade_ms=5.0):
        self.cuts += 1
