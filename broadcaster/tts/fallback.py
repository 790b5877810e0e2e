"""Try the scene's engines in order; a failing engine is skipped for a while, logged once.

The anchor keeps talking: a sentence is only lost when every engine fails.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Sequence

from broadcaster.tts.engine import Synthesized, TTSEngine, TTSError

log = logging.getLogger(__name__)


class FallbackChain:
    """Engines in preference order. retry_after_s: how long a failed engine is left out."""

    name = "fallback"

    def __init__(self, engines: Sequence[TTSEngine], retry_after_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not engines:
            raise ValueError("FallbackChain: at least one TTS engine is required")
        self.engines = list(engines)
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._down_until: dict[int, float] = {}
        self.last_engine: str | None = None

    def synthesize(self, text: str) -> Synthesized:
        now = self._clock()
        errors: list[str] = []
        candidates = [i for i in range(len(self.engines)) if self._down_until.get(i, 0.0) <= now]
        if not candidates:  # everything is cooling down: try them all anyway
            candidates = list(range(len(self.engines)))
        for i in candidates:
            engine = self.engines[i]
            try:
                out = engine.synthesize(text)
            except TTSError as exc:
                errors.append(str(exc))
                if i not in self._down_until:
                    nxt = self._next_name(i)
                    log.warning("TTS engine %s failed (%s); falling back to %s", engine.name, exc, nxt)
                self._down_until[i] = now + self.retry_after_s
                continue
            if out.pcm.size == 0:
                errors.append(f"{engine.name}: empty audio")
                continue
            if i in self._down_until:
                del self._down_until[i]
                log.info("TTS engine %s works again", engine.name)
            self.last_engine = engine.name
            return out
        raise TTSError("all TTS engines failed: " + " | ".join(errors))

    def _next_name(self, i: int) -> str:
        return self.engines[i + 1].name if i + 1 < len(self.engines) else "nothing (last engine)"

    def close(self) -> None:
        for e in self.engines:
            e.close()
