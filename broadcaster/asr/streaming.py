"""Streaming transcription: VAD events in, partial and final transcripts out.

TranscriptPlanner decides what to decode next (pure bookkeeping, no model): every pending
final first, then the audio up to a pause in speech (with a turn-end gate), then at most one
partial of the open utterance when its audio grew by partial_interval_s since the last
partial. Callers that fall behind therefore skip stale partials instead of queueing them, and
a final never waits behind a partial backlog.

With a turn-end gate (asr.turn_end) the pause's transcript, the pitch contour of the audio
before the pause (asr.prosody) and, with a turn model (asr.smart_turn), its P(complete) go to
the gate, which ends the turn early after a finished sentence and late mid-clause; when no
speech came after that pause, the final reuses its text instead of decoding the same audio
again. The turn model runs on its own thread while Whisper decodes the same audio.

Three ways to run it:
- StreamingTranscriber.handle(event) -> list[Transcript]: synchronous, decodes inline
  (files, tests, the server's worker).
- AsrWorker: a thread with a bounded event queue; submit(event) never blocks the capture
  thread; transcripts go to a callback (from the worker thread).
- MicPipeline: source -> VadSegmenter (on the capture thread; on_onset fires there, within
  one 32 ms VAD window of the speech) -> AsrWorker.
Each takes turn_end (a TurnEndConfig, or None for the fixed silence wait).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator

import numpy as np

from broadcaster.asr.prosody import Contour, contour
from broadcaster.asr.turn_end import TurnEndConfig, TurnEndGate, TurnEndPolicy
from broadcaster.mic.vad import (
    SAMPLE_RATE,
    SpeechAudio,
    SpeechOnset,
    SpeechPause,
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
    contour: Contour = Contour.UNKNOWN  # a pause's transcript: the pitch before the pause
    p_complete: float | None = None     # a pause's transcript: the turn model's P(complete)


@dataclass
class _Job:
    kind: str           # "partial", "pause" (a partial the turn-end gate waits for) or "final"
    utt_id: int
    audio: np.ndarray
    start: float
    end: float
    ready_wall: float
    speech_end: float | None = None
    text: str | None = None     # a final whose text is already known (its pause's transcript)


class TranscriptPlanner:
    """Bookkeeping for which utterance audio to decode next (no model, no threads)."""

    def __init__(self, partial_interval_s: float = 0.6, min_partial_s: float = 0.5,
                 pause_decodes: bool = False) -> None:
        self.partial_interval_s = partial_interval_s
        self.min_partial_s = min_partial_s
        self.pause_decodes = pause_decodes
        self._finals: list[_Job] = []
        self._pause: SpeechPause | None = None
        self._heard: tuple[int, float, str] | None = None   # (utt, speech end, text) of the last pause
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
            self._pause = None            # speech resumed: that pause's transcript is moot
        elif isinstance(event, SpeechPause):
            if self.pause_decodes and event.utt_id == self._utt_id and self._samples:
                self._pause = event
        elif isinstance(event, UtteranceEnd):
            self._finals.append(_Job("final", event.utt_id, event.audio, event.start, event.end, event.wall,
                                     event.speech_end))
            self._pause = None
            if event.utt_id == self._utt_id:
                self._utt_id, self._chunks, self._samples = None, [], 0
        elif isinstance(event, UtteranceDropped):
            self._pause = None
            if event.utt_id == self._utt_id:
                self._utt_id, self._chunks, self._samples = None, [], 0

    def heard(self, job: _Job, text: str) -> None:
        """A pause job's transcript: a final with the same speech end reuses it."""
        self._heard = (job.utt_id, job.speech_end, text)

    def next_job(self) -> _Job | None:
        if self._finals:
            job = self._finals.pop(0)
            heard, self._heard = self._heard, None
            if heard is not None and heard[:2] == (job.utt_id, job.speech_end):
                job.text = heard[2]
            return job
        if self._pause is not None and self._pause.utt_id == self._utt_id and self._chunks:
            pause, self._pause = self._pause, None
            self._last_partial_samples = self._samples
            audio = np.concatenate(self._chunks)
            self._chunks = [audio]
            return _Job("pause", pause.utt_id, audio, self._start, self._start + self._samples / SAMPLE_RATE,
                        pause.wall, pause.speech_end)
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
    """Synchronous: handle(event) returns the transcripts that event made due (decoded inline).

    gate: a TurnEndGate shared with the VadSegmenter, or None (silence alone ends a turn)."""

    def __init__(self, asr, partial_interval_s: float = 0.6, partials: bool = True, gate=None) -> None:
        self.asr = asr
        self.partials = partials
        self.gate = gate
        self.planner = TranscriptPlanner(partial_interval_s, pause_decodes=gate is not None)

    def decode_job(self, job: _Job) -> Transcript:
        """The job's transcript (a pause job's is a partial, with the pitch contour before the
        pause when a gate will use it); safe on another thread."""
        kind = "final" if job.kind == "final" else "partial"
        if job.text is not None:
            return Transcript(kind, job.utt_id, job.text, job.start, job.end,
                              time.monotonic() - job.ready_wall, 0.0, job.speech_end)
        heard = _TurnModelRun(self.gate.model, job.audio) \
            if job.kind == "pause" and self.gate is not None and self.gate.model is not None else None
        d = self.asr.decode(job.audio)
        pitch = contour(job.audio) if job.kind == "pause" and self.gate is not None else Contour.UNKNOWN
        p_complete = heard.result() if heard is not None else None
        return Transcript(kind, job.utt_id, d.text, job.start, job.end,
                          time.monotonic() - job.ready_wall, d.decode_s, job.speech_end, pitch,
                          p_complete)

    def record(self, job: _Job, tr: Transcript) -> None:
        """After decode_job, on the thread that feeds the planner: a pause's text and pitch
        contour to the gate."""
        if job.kind == "pause":
            self.planner.heard(job, tr.text)
            if self.gate is not None:
                self.gate.heard(job.utt_id, job.speech_end, tr.text, tr.contour, tr.p_complete)

    def run_job(self, job: _Job) -> Transcript:
        tr = self.decode_job(job)
        self.record(job, tr)
        return tr

    def pending(self) -> list[Transcript]:
        out = []
        while (job := self.planner.next_job()) is not None:
            if job.kind == "partial" and not self.partials:
                continue
            tr = self.run_job(job)
            if job.kind != "pause" or self.partials:
                out.append(tr)
        return out

    def handle(self, event: VadEvent) -> list[Transcript]:
        self.planner.add(event)
        return self.pending()


class _TurnModelRun:
    """The turn model on one pause's audio, on a thread of its own (ONNX Runtime releases the
    GIL, so it runs beside Whisper's decode). A failing model gives None (the pitch decides)
    and is logged once per process."""

    failed_once = False

    def __init__(self, model, audio: np.ndarray) -> None:
        self._model, self._audio = model, audio
        self._p: float | None = None
        self._thread = threading.Thread(target=self._run, name="turn-model", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._p = self._model.probability(self._audio)
        except Exception as exc:
            if not _TurnModelRun.failed_once:
                _TurnModelRun.failed_once = True
                log.warning("turn model failed (%s); the pitch decides a bare period's turn end", exc)

    def result(self) -> float | None:
        self._thread.join()
        return self._p


def turn_end_gate(vad_config: VadConfig, turn_end: TurnEndConfig | None) -> TurnEndGate | None:
    """The gate for one VAD + transcriber pair (None: min_silence_ms alone ends a turn); the
    VAD's min_silence_ms is the wait when the words give no cue. The turn model named by
    turn_end.model is loaded once per process."""
    if turn_end is None:
        return None
    model = None
    if turn_end.model is not None:
        from broadcaster.asr.smart_turn import SmartTurnError, load_smart_turn
        try:
            model = load_smart_turn(turn_end.model)
        except SmartTurnError as exc:
            log.warning("turn model not loaded (%s); the pitch decides a bare period's turn end", exc)
    return TurnEndGate(TurnEndPolicy(replace(turn_end, unclear_ms=vad_config.min_silence_ms)), model)


def transcribe_frames(frames: Iterable[np.ndarray], asr, vad_config: VadConfig = VadConfig(),
                      partial_interval_s: float = 0.6, partials: bool = True,
                      turn_end: TurnEndConfig | None = None) -> Iterator[Transcript]:
    """Run 16 kHz float32 frames through VAD and ASR synchronously (file checks, tests)."""
    gate = turn_end_gate(vad_config, turn_end)
    seg = VadSegmenter(vad_config, turn_end=gate)
    st = StreamingTranscriber(asr, partial_interval_s, partials, gate)
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
                 queue_events: int = 256, gate: TurnEndGate | None = None) -> None:
        self._st = StreamingTranscriber(asr, partial_interval_s, gate=gate)
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
                if job.kind in ("partial", "pause") and job.utt_id in self._gappy:
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
                 vad_config: VadConfig = VadConfig(), partial_interval_s: float = 0.6,
                 turn_end: TurnEndConfig | None = None) -> None:
        self.source = source
        self.gate = turn_end_gate(vad_config, turn_end)
        self.segmenter = VadSegmenter(vad_config, on_onset=on_onset, turn_end=self.gate)
        self.worker = AsrWorker(asr, on_transcript, partial_interval_s, gate=self.gate)
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
