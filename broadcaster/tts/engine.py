"""What every TTS engine offers: text in, mono float32 audio at the engine's own rate out."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class TTSError(RuntimeError):
    """An engine could not synthesize (unreachable service, bad voice, empty audio)."""


@dataclass(frozen=True)
class Synthesized:
    pcm: np.ndarray  # float32 mono
    rate: int
    engine: str


class TTSEngine(Protocol):
    name: str

    def synthesize(self, text: str) -> Synthesized:
        """Blocking; called from a worker thread. Raises TTSError on failure."""
        ...

    def close(self) -> None: ...
