"""An ASR whose model can be replaced while the mic runs (a scene switch to another language).

Each decode uses the model that is current when it starts, so a switch lands between two
decodes and never inside one; the old model is dropped once its last decode returns."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class AsrChoice:
    """What a local ASR was built for: the Whisper language code and the model asked for."""

    language: str
    model: str | None


class SwitchableAsr:
    """Delegates decode() to the current model; switch() replaces it (any thread)."""

    def __init__(self, asr, choice: AsrChoice):
        self._asr, self._choice = asr, choice
        self._lock = threading.Lock()

    @property
    def choice(self) -> AsrChoice:
        return self._choice

    def decode(self, audio, *args, **kwargs):
        with self._lock:
            asr = self._asr
        return asr.decode(audio, *args, **kwargs)

    def switch(self, asr, choice: AsrChoice) -> None:
        with self._lock:
            self._asr, self._choice = asr, choice
