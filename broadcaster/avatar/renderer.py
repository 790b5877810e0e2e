"""What every anchor renderer offers the compositor."""

from __future__ import annotations

from typing import Protocol

import numpy as np


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
