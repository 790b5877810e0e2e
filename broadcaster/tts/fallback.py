"""Try the scene's engines in order; a failing engine is skipped for a while, logged once.

The anchor keeps talking: a sentence is only lost when every engine fails. A streaming engine
that fails before its first audio (over its first-audio timeout, unreachable, an HTTP error)
hands the sentence to the next engine; one that breaks or stalls mid-sentence does too, and
the next engine speaks the sentence again from its start (its first chunk is marked
`restart`). After retry_after_s the preferred engine is tried again; when it answers, it is
used from then on.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from broadcaster.tts.engine import (
    SpeechChunk,
    Synthesized,
    TTSEngine,
    TTSError,
    chunks_of,
    collect,
)

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

    def stream(self, text: str) -> Iterator[SpeechChunk]:
        """The sentence's audio from the first engine that delivers it, chunk by chunk."""
        errors: list[str] = []
        started = False   # some audio of this sentence has been handed out already
        for i in self._candidates():
            engine = self.engines[i]
            chunks = chunks_of(engine, text)
            got = False
            try:
                for chunk in chunks:
                    if chunk.pcm.size == 0:
                        continue
                    if not got:
                        self._answered(i)
                        if started:
                            chunk = replace(chunk, restart=True)
                    got = started = True
                    yield chunk
            except TTSError as exc:
                errors.append(str(exc))
                self._failed(i, exc)
                continue
            finally:
                chunks.close()
            if got:
                return
            errors.append(f"{engine.name}: empty audio")
        raise TTSError("all TTS engines failed: " + " | ".join(errors))

    def synthesize(self, text: str) -> Synthesized:
        return collect(self.stream(text))

    def _candidates(self) -> list[int]:
        now = self._clock()
        candidates = [i for i in range(len(self.engines)) if self._down_until.get(i, 0.0) <= now]
        return candidates or list(range(len(self.engines)))  # all cooling down: try them all

    def _answered(self, i: int) -> None:
        if i in self._down_until:
            del self._down_until[i]
            log.info("TTS engine %s works again", self.engines[i].name)
        self.last_engine = self.engines[i].name

    def _failed(self, i: int, exc: TTSError) -> None:
        if i not in self._down_until:
            log.warning("TTS engine %s failed (%s); falling back to %s", self.engines[i].name, exc,
                        self._next_name(i))
        self._down_until[i] = self._clock() + self.retry_after_s

    def _next_name(self, i: int) -> str:
        return self.engines[i + 1].name if i + 1 < len(self.engines) else "nothing (last engine)"

    def close(self) -> None:
        for e in self.engines:
            e.close()
