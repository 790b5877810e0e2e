"""Which slots carry a picture: rate control's frame-rate cut and audio only, bounded so that
the picture never stands still for longer than a second.

Audio only (and a deep frame-rate cut) is for a link that cannot carry more than the audio;
a viewer who sees a still picture for seconds thinks the broadcast is down. So even then one
picture a second goes out: on a still scene a repeated frame costs a few bytes, a busy one
at the encoder's floor rate costs what one frame at that rate costs. It also bounds the gap
when a stalled connection lets slots pile up that are then written with the decision of the
moment they are written.
"""

from __future__ import annotations

KEEPALIVE_S = 1.0


class PicturePacing:
    """Decides per slot whether its picture is sent; see the module docstring."""

    def __init__(self, fps: int, keepalive_s: float = KEEPALIVE_S) -> None:
        self.keepalive_slots = max(1, round(fps * keepalive_s))
        self.fps_divisor = 1
        self.drop_video = False
        self._last_sent: int | None = None

    def set(self, fps_divisor: int, drop_video: bool) -> None:
        self.fps_divisor = max(1, int(fps_divisor))
        self.drop_video = bool(drop_video)

    def skip(self, index: int, needs_picture: bool = False) -> bool:
        """True: leave this slot's picture out (audio still goes)."""
        due = (needs_picture or self._last_sent is None
               or index - self._last_sent >= self.keepalive_slots)
        skip = not due and (self.drop_video or index % self.fps_divisor != 0)
        if not skip:
            self._last_sent = index
        return skip
