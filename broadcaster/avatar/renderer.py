"""What every anchor renderer offers the compositor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from broadcaster.render.yuv import YuvaPatch


class AnchorRenderer(Protocol):
    width: int
    height: int
    static: bool        # the same picture every frame: the compositor bakes it into the background

    def render(self, frame_index: int, speech: np.ndarray) -> np.ndarray:
        """The anchor at `frame_index`, its mouth driven by `speech` (the slot's mono float32
        voice samples), as RGBA uint8 (height, width, 4). Called on the media thread."""
        ...

    def reset(self) -> None:
        """Back to idle at the next frame (an interruption); any thread."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class SpeechAhead(Protocol):
    """An anchor that renders from speech before it is on air (the video-loop anchor): the
    mixer tells it what it queues, and each slot says where in the speech stream it is."""

    late_frames: int    # slots whose picture was not ready in time (the clip's frame was shown)
    last_late: bool     # the slot just rendered was one of them

    def speech_queued(self, pcm: np.ndarray, stream_pos: int, plays_in: int) -> None:
        """`pcm` (mono float32 at the broadcast rate) was queued at speech-stream position
        `stream_pos`, with `plays_in` samples of speech ahead of it; called on the pushing
        thread, must not block."""
        ...

    def speech_may_start(self, stream_pos: int) -> bool:
        """Whether speech starting at `stream_pos` after silence may go on air at the next
        slot (its first mouth is ready); False: the mixer holds it a little longer. Called on
        the media thread under the mixer's lock: must not block."""
        ...

    def render_slot(self, frame_index: int, speech: np.ndarray, speech_pos: int | None) -> "YuvaPatch":
        """As render(), but already in yuv420p (the anchor converts what changed, where and
        when it can); `speech_pos`: the stream position of the slot's first sample, None when
        no speech is on air in the slot."""
        ...

    def close(self) -> None:
        """Stop the worker; safe from any thread, also while the media thread renders."""
        ...


@runtime_checkable
class ActionClips(Protocol):
    """An anchor with named action clips (a wave, a nod) it can play on request."""

    def clip_names(self) -> list[str]: ...

    def play(self, name: str) -> bool:
        """Play clip `name` once, as soon as the anchor is not speaking; False: no such clip."""
        ...
