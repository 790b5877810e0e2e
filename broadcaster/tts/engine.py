"""What every TTS engine offers: text in, mono float32 audio at the engine's own rate out.

An engine either returns a whole sentence (`synthesize`, Piper and edge-tts) or, when it talks
to a server that streams, also offers `stream`: the sentence's audio chunk by chunk as it
arrives, so the first chunk goes on air before the server has finished the sentence.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


class TTSError(RuntimeError):
    """An engine could not synthesize (unreachable service, bad voice, empty audio)."""


@dataclass(frozen=True)
class Synthesized:
    pcm: np.ndarray  # float32 mono
    rate: int
    engine: str


@dataclass(frozen=True)
class SpeechChunk:
    """A piece of one sentence's audio.

    whole: the complete sentence in one piece (an engine that does not stream), so it can be
    levelled as a whole. restart: the sentence starts over here because the engine that was
    speaking it broke off and the next engine in the chain took over.
    """

    pcm: np.ndarray  # float32 mono
    rate: int
    engine: str
    whole: bool = False
    restart: bool = False


class TTSEngine(Protocol):
    name: str

    def synthesize(self, text: str) -> Synthesized:
        """Blocking; called from a worker thread. Raises TTSError on failure."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class StreamingTTSEngine(Protocol):
    """An engine whose server streams: chunks are yielded as they arrive."""

    name: str

    def stream(self, text: str) -> Iterator[SpeechChunk]:
        """Blocking iterator, used from a worker thread. Raises TTSError when no audio arrives
        within the engine's first-audio timeout, or when the stream breaks or stalls.
        Closing the iterator early closes the connection."""
        ...

    def synthesize(self, text: str) -> Synthesized: ...

    def close(self) -> None: ...


def collect(chunks: Iterator[SpeechChunk]) -> Synthesized:
    """A whole sentence from a stream of chunks (all from one engine)."""
    parts, rate, engine = [], 0, ""
    for chunk in chunks:
        if chunk.restart:
            parts = []
        parts.append(chunk.pcm)
        rate, engine = chunk.rate, chunk.engine
    if not parts:
        raise TTSError(f"{engine or 'tts'}: no audio")
    return Synthesized(np.concatenate(parts).astype(np.float32), rate, engine)


def chunks_of(engine, text: str) -> Iterator[SpeechChunk]:
    """Any engine's audio for one sentence as chunks: streamed where it streams, else the
    whole sentence as one `whole` chunk."""
    if isinstance(engine, StreamingTTSEngine):
        yield from engine.stream(text)
        return
    out = engine.synthesize(text)
    yield SpeechChunk(out.pcm, out.rate, out.engine, whole=True)
