"""Streaming transcription: VAD events in, partial and final transcripts out.

TranscriptPlanner decides what to decode next (pure bookkeeping, no model): every pending
final first, then at most one partial of the open utterance when its audio grew by
partial_interval_s since the last partial. Callers that fall behind therefore skip stale
partials instead of queueing them, and a final never waits behind a partial backlog.

Three ways to run it:
- StreamingTranscriber.handle(event) -> list[Transcript]: synchronous, decodes inline
  (files, tests, the server's worker).
- AsrWorker: a thread with a bounded event queue; submit(event) never blocks the capture
  thread; transcripts go to a callback (from the worker thread).
- MicPipeline: source -> VadSegmenter (on the capture thread; on_onset fires there, within
  one 32 ms VAD window of the speech) -> AsrWorker.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from broadcaster.mic.vad import (
    SAMPLE_RATE,
    SpeechAudio,
    SpeechOnset,
    UtteranceDropped,
    UtteranceEnd,
    VadConfig,
    VadEvent,
    VadSegmenter,
)

log = logging.getLogger(__name__)


@dataclass
class Transcript:
    kind: str           # "partial" or "final"
    utt_id: int
    text: str
    start: float        # stream seconds where the utterance starts
    end: float          # stream seconds of the last audio this text covers
    latency_s: float    # wall seconds from the audio being available (final: VAD end) to text
    decode_s: float     # model time of this decode
    speech_end: float | None = None  # final only: stream seconds where speech stopped (before hangover)


@dataclass
class _Job:
    kind: str
    utt_id: int
    audio: np.ndarray
    start: float
    end: float
    ready_wall: float
    speech_end: float | None = None


class TranscriptPlanner:
    """Bookkeeping for which utterance audio to decode next (no model, no threads)."""

    def __init__(self, partial_interval_s: float = 0.6, min_partial_s: float = 0.5) -> None:
        self.partial_interval_s = partial_interval_s
        self.min_partial_s = min_partial_s
        self._finals: list[_Job] = []
        self._utt_id: int | None = None
        self._chunks: list[np.ndarray] = []
        self._samples = 0
        self._start = 0.0
        self._last_partial_samples = 0
        self._ready_wall = 0.0

    def add(self, event: VadEvent) -> None:
        if isinstance(event, SpeechOnset):
            self._utt_id, self._chunks, self._samples = event.utt_id, [], 0
            self._start, self._last_partial_samples = event.audio_start, 0
        elif isinstance(event, SpeechAudio):
            if event.utt_id != self._utt_id:
                self._utt_id, self._chunks, self._samples, self._last_partial_samples = event.utt_id, [], 0, 0
            self._chunks.append(event.audio)
            self._samples += len(event.audio)
            self._ready_wall = time.monotonic()
        elif isinstance(event, UtteranceEnd):
            self._finals.append(_Job("final", event.utt_id, event.audio, event.start, event.end, event.wall,
                                     event.speech_end))
            if event.utt_id == self._utt_id:
                self._utt_id, self._chunks, self._samples = None, [], 0
        elif isinstance(event, UtteranceDropped):
            if event.utt_id == self._utt_id:
                self._utt_id, self._chunks, self._samples = None, [], 0

    def next_job(self) -> _Job | None:
        if self._finals:
            return self._finals.pop(0)
        if self._utt_id is None or self._samples < self.min_partial_s * SAMPLE_RATE:
            return None
        if self._samples - self._last_partial_samples < self.partial_interval_s * SAMPLE_RATE:
            return None
        self._last_partial_samples = self._samples
        audio = np.concatenate(self._chunks)
        self._chunks = [audio]
        return _Job("partial", self._utt_id, audio, self._start,
                    self._start + self._samples / SAMPLE_RATE, self._ready_wall)


class StreamingTranscriber:
    """Synchronous: handle(event) returns the transcripts that event made due (decoded inline)."""

    def __init__(self, asr, partial_interval_s: float = 0.6, partials: bool = True) -> None:
        self.asr = asr
        self.partials = partials
        self.planner = TranscriptPlanner(partial_interval_s)

    def run_job(self, job: _Job) -> Transcript:
        d = self.asr.decode(job.audio)
        return Transcript(job.kind, job.utt_id, d.text, job.start, job.end,
                          time.monotonic() - job.ready_wall, d.decode_s, job.speech_end)

    def pending(self) -> list[Transcript]:
        out = []
        while (job := self.planner.next_job()) is not None:
            if job.kind == "partial" and not self.partials:
                continue
            out.append(self.run_job(job))
        return out

    def handle(self, event: VadEvent) -> list[Transcript]:
        self.planner.add(event)
        return self.pending()


def transcribe_frames(frames: Iterable[np.ndarray], asr, vad_config: VadConfig = VadConfig(),
                      partial_interval_s: float = 0.6, partials: bool = True) -> Iterator[Transcript]:
    """Run 16 kHz float32 frames through VAD and ASR synchronously (file checks, tests)."""
    seg = VadSegmenter(vad_config)
    st = StreamingTranscriber(asr, partial_interval_s, partials)
    for frame in frames:
        for ev in seg.process(frame):
            yield from st.handle(ev)
    for ev in seg.flush():
        yield from st.handle(ev)


class AsrWorker:
    """A thread that decodes; submit() is non-blocking for the capture thread.

    Queue policy when full (decoder far behind): SpeechAudio is dropped and that utterance
    gets no more partials (its final still uses the complete UtteranceEnd audio); onset/end
    events wait at most 0.5 s for room. on_transcript runs on the worker thread.
    """

    def __init__(self, asr, on_transcript: Callable[[Transcript], None], partial_interval_s: float = 0.6,
                 queue_events: int = 256) -> None:
        self._st = StreamingTranscriber(asr, partial_interval_s)
        self._on = on_transcript
        self._q: queue.Queue[VadEvent | None] = queue.Queue(maxsize=queue_events)
        self._gappy: set[int] = set()
        self.dropped_events = 0
        self._thread = threading.Thread(target=self._run, name="asr-worker", daemon=True)
        self._thread.start()

    def submit(self, event: VadEvent) -> None:
        try:
            if isinstance(event, SpeechAudio):
                self._q.put_nowait(event)
            else:
                self._q.put(event, timeout=0.5)
        except queue.Full:
            self.dropped_events += 1
            if isinstance(event, SpeechAudio):
                self._gappy.add(event.utt_id)
            else:
                log.warning("asr worker queue full: dropped %s", type(event).__name__)

    def _run(self) -> None:
        while True:
            ev = self._q.get()
            batch = [ev]
            while True:  # drain: decode only the newest state
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            for e in batch:
                if e is None:
                    return
                self._st.planner.add(e)
            while (job := self._st.planner.next_job()) is not None:
                if job.kind == "partial" and job.utt_id in self._gappy:
                    continue
                try:
                    tr = self._st.run_job(job)
                except Exception:
                    log.exception("asr decode failed (utterance %d)", job.utt_id)
                    continue
                try:
                    self._on(tr)
                except Exception:
                    log.exception("asr on_transcript callback failed")

    def close(self, timeout: float = 5.0) -> None:
        """Finish what is queued, then stop the thread."""
        self._q.put(None)
        self._thread.join(timeout)


class MicPipeline:
    """source.frames() -> VadSegmenter -> AsrWorker, on one capture thread.

    on_onset(SpeechOnset) is called on the capture thread right when speech starts (barge-in);
    on_transcript(Transcript) on the ASR worker thread. stop() closes the source and joins.
    """

    def __init__(self, source, asr, on_transcript: Callable[[Transcript], None],
                 on_onset: Callable[[SpeechOnset], None] | None = None,
                 vad_config: VadConfig = VadConfig(), partial_interval_s: float = 0.6) -> None:
        self.source = source
        self.segmenter = VadSegmenter(vad_config, on_onset=on_onset)
        self.worker = AsrWorker(asr, on_transcript, partial_interval_s)
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mic-capture", daemon=True)

    def start(self) -> "MicPipeline":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for frame in self.source.frames():
                if self._stop.is_set():
                    break
                for ev in self.segmenter.process(frame):
                    self.worker.submit(ev)
            for ev in self.segmenter.flush():
                self.worker.submit(ev)
        except BaseException as exc:  # reported to the owner, not swallowed
            self.error = exc
            log.error("mic pipeline stopped: %s", exc)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the source to end (files) and the worker to finish its queue."""
        self._thread.join(timeout)
        self.worker.close()

    def stop(self) -> None:
        self._stop.set()
        self.source.close()
        self._thread.join(5.0)
        self.worker.close()
