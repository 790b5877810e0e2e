"""SpeechStage: streamed text in, synthesized sentences pushed to the speech sink in order.

The first sentence is synthesized as soon as the splitter releases it, while later text still
streams in. Synthesis runs on one worker thread so the asyncio loop never blocks. An engine
that streams (a remote server) has each chunk pushed as it arrives, so its first audio goes on
air before the server has finished the sentence; the others push whole sentences.
interrupt() drops everything queued at once (a sentence being synthesized is discarded, a
stream being received is closed).
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import AsyncIterator, Protocol

import numpy as np

from broadcaster.tts.engine import TTSEngine, TTSError, chunks_of
from broadcaster.tts.levels import BROADCAST_RATE, StreamLeveler, prepare_speech
from broadcaster.tts.splitter import SentenceSplitter, split_first_fragment

log = logging.getLogger(__name__)


class SpeechSink(Protocol):
    """Where finished sentences go (the mixer, through the turn log); thread-safe."""

    def push(self, pcm: np.ndarray, caption: str | None, line_id: int) -> None: ...

    def cut(self) -> None:
        """Silence what is playing now (with a short fade)."""


@dataclass
class LineReport:
    """What happened to one line: for logs, metrics and the benchmark."""

    line_id: int
    sentences: list[str] = field(default_factory=list)
    engines: list[str] = field(default_factory=list)
    seconds_of_speech: float = 0.0
    first_audio_latency_s: float | None = None  # first text delta -> first 48 kHz sample ready
    interrupted: bool = False
    failed: int = 0


_END = object()


class SpeechStage:
    """engine: a TTSEngine or FallbackChain; sink: thread-safe push(pcm, caption, line_id)."""

    def __init__(self, engine: TTSEngine, sink: SpeechSink, *, target_dbfs: float = -20.0,
                 max_chars: int = 140, max_queued_sentences: int = 16,
                 first_fragment_words: int | None = 6) -> None:
        self.engine = engine
        self.sink = sink
        self.target_dbfs = target_dbfs
        self.max_chars = max_chars
        self.max_queued = max_queued_sentences
        # the first sentence of a line longer than this many words is spoken in two parts, so
        # the first audio is ready sooner (None: never cut)
        self.first_fragment_words = first_fragment_words
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")
        self._generation = 0
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._line_stop: asyncio.Event | None = None
        self._push_lock = threading.Lock()   # an interrupt never lands between check and push
        self._stream_gains: dict[str, float] = {}   # per engine, the last streamed sentence's gain

    def set_engine(self, engine: TTSEngine, target_dbfs: float) -> None:
        """The next sentence is synthesized by `engine` at `target_dbfs` (a reload). The engine
        it replaces is closed on the synthesis thread, once the sentence in progress is done."""
        old, self.engine = self.engine, engine
        self.target_dbfs = target_dbfs
        if old is not engine and not self._closed:
            self._executor.submit(_close_engine, old)

    def interrupt(self, cut_sink: bool = True) -> None:
        """Stop the current line now (callable from any thread): queued sentences are dropped,
        a speak() waiting for more text returns, and the sink is cut if it can be."""
        with self._push_lock:
            self._generation += 1
            if cut_sink:
                self.sink.cut()
        loop, event = self._loop, self._line_stop
        if loop is not None and event is not None:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed: nothing is waiting on it
                pass

    async def speak(self, deltas: AsyncIterator[str], line_id: int) -> LineReport:
        """Speak a streamed line; returns when it is all pushed (or interrupted).
        One line at a time per stage: await it (or interrupt it) before the next."""
        if self._closed:
            raise RuntimeError("SpeechStage is closed")
        gen = self._generation
        self._loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        self._line_stop = stop
        report = LineReport(line_id=line_id)
        queue: asyncio.Queue = asyncio.Queue(maxsize=self.max_queued)
        t_first: list[float] = []
        consumer = asyncio.create_task(self._synthesize_loop(queue, gen, report, t_first))
        splitter = SentenceSplitter(max_chars=self.max_chars)
        first = [True]

        async def enqueue(sentence: str) -> None:
            parts = [sentence]
            if first[0] and self.first_fragment_words:
                parts = split_first_fragment(sentence, self.first_fragment_words)
            first[0] = False
            for part in parts:
                await queue.put(part)

        it = deltas.__aiter__()
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while self._generation == gen:
                nxt = asyncio.ensure_future(it.__anext__())
                done, _ = await asyncio.wait({nxt, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if nxt not in done:  # interrupted while waiting for more text
                    nxt.cancel()
                    break
                try:
                    delta = nxt.result()
                except StopAsyncIteration:
                    for sentence in splitter.flush():
                        await enqueue(sentence)
                    break
                if not t_first:
                    t_first.append(time.monotonic())
                if self._generation != gen:
                    break
                for sentence in splitter.feed(delta):
                    await enqueue(sentence)
        finally:
            stopped.cancel()
            await queue.put(_END)
            await consumer
        report.interrupted = self._generation != gen
        return report

    async def say(self, text: str, line_id: int) -> LineReport:
        """Convenience for complete text (script lines, /say)."""
        async def one() -> AsyncIterator[str]:
            yield text
        return await self.speak(one(), line_id)

    async def _synthesize_loop(self, queue: asyncio.Queue, gen: int, report: LineReport,
                               t_first: list[float]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sentence = await queue.get()
            if sentence is _END:
                return
            if self._generation != gen:
                continue  # drain without synthesizing
            try:
                await loop.run_in_executor(self._executor, self._speak_sentence, sentence, gen,
                                           report, t_first)
            except TTSError as exc:
                report.failed += 1
                log.error("line %d: sentence not spoken: %s", report.line_id, exc)

    def _speak_sentence(self, sentence: str, gen: int, report: LineReport,
                        t_first: list[float]) -> None:
        """On the worker thread: push the sentence's audio to the sink as it is synthesized
        (one push for an engine that returns whole sentences, one per chunk for a stream)."""
        target = self.target_dbfs
        leveler: StreamLeveler | None = None
        engine = None
        chunks = chunks_of(self.engine, sentence)
        try:
            for chunk in chunks:
                if chunk.restart:
                    leveler = None   # the broken stream's resampler tail is not played
                if chunk.whole:
                    pcm = prepare_speech(chunk.pcm, chunk.rate, target)
                else:
                    if leveler is None or chunk.engine != engine:
                        leveler = StreamLeveler(chunk.rate, target,
                                                start_gain=self._stream_gains.get(chunk.engine, 1.0))
                    pcm = leveler.feed(chunk.pcm)
                engine = chunk.engine
                if not self._push(pcm, sentence, gen, report, t_first):
                    return  # interrupted: closing the stream ends the download
            if leveler is not None:
                self._push(leveler.flush(), sentence, gen, report, t_first)
                self._stream_gains[engine] = leveler.gain
        finally:
            chunks.close()
        if engine is not None:
            report.sentences.append(sentence)
            report.engines.append(engine)

    def _push(self, pcm: np.ndarray, sentence: str, gen: int, report: LineReport,
              t_first: list[float]) -> bool:
        """Hand audio to the sink unless the line was interrupted; False once it was."""
        with self._push_lock:
            if self._generation != gen:
                return False
            if pcm.size == 0:
                return True
            if report.first_audio_latency_s is None and t_first:
                report.first_audio_latency_s = time.monotonic() - t_first[0]
            self.sink.push(pcm, sentence, report.line_id)
        report.seconds_of_speech += len(pcm) / BROADCAST_RATE
        return True

    def close(self) -> None:
        """Stop the worker thread (waits for a running synthesis to finish)."""
        self._closed = True
        self._generation += 1
        self._executor.shutdown(wait=True, cancel_futures=True)


def _close_engine(engine: TTSEngine) -> None:
    """Release a replaced engine (its model, sessions, connections); a failure is logged."""
    try:
        engine.close()
    except Exception as exc:   # noqa: BLE001 - a bad close must not stop the next sentence
        log.warning("closing the replaced voice %s failed: %s", getattr(engine, "name", "?"), exc)
