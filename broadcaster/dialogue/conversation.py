"""The anchor's side of the conversation, on the control loop (asyncio).

Takes turns (turns.choose_turn), turns each into text (the responder for viewers and the
host, the text itself for /say, the script and thank-yous for gifts and follows), streams that text into the speech stage
sentence by sentence, and waits for the line to finish on air before the next. Anything can
interrupt: /say with interrupt, or the host starting to talk (barge-in).
Per-turn timings (selection, LLM, TTS, on air, muxed) are kept for /turns and /metrics.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Protocol

from broadcaster.chat.message import ChatEvent, ChatMessage
from broadcaster.dialogue.thanks import ThanksQueue
from broadcaster.dialogue.turns import ScriptSchedule, choose_turn
from broadcaster.reply.responder import Responder
from broadcaster.tts.splitter import SentenceSplitter

log = logging.getLogger(__name__)


@dataclass
class TurnReport:
    line_id: int
    kind: str                       # host | say | chat | script | thanks
    user: str | None
    text: str
    arrived: float                  # monotonic times; None until reached
    picked: float | None = None
    first_delta: float | None = None
    first_sentence: float | None = None
    audio_ready: float | None = None
    on_air: float | None = None     # first samples pulled into a frame slot
    muxed: float | None = None      # that slot written to the output
    spoken: str = ""
    interrupted: bool = False

    def as_dict(self) -> dict:
        def ms(a, b):
            return None if a is None or b is None else round((b - a) * 1000, 1)
        return {
            "line_id": self.line_id, "kind": self.kind, "user": self.user, "text": self.text[:200],
            "spoken": self.spoken[:500], "interrupted": self.interrupted,
            "ms": {"selection": ms(self.arrived, self.picked),
                   "first_token": ms(self.picked, self.first_delta),
                   "first_sentence": ms(self.picked, self.first_sentence),
                   "tts_first_audio": ms(self.first_sentence, self.audio_ready),
                   "render_queue": ms(self.audio_ready, self.on_air),
                   "mux": ms(self.on_air, self.muxed),
                   "total_to_muxed": ms(self.arrived, self.muxed)},
        }


class TurnLog:
    """Timing of recent turns, written from the loop, the media thread and the publisher's."""

    def __init__(self, keep: int = 100, on_complete: Callable[[TurnReport], None] | None = None):
        """on_complete(report) is called once a turn's first audio was muxed."""
        self._lock = threading.Lock()
        self._turns: dict[int, TurnReport] = {}
        self._order: deque[int] = deque(maxlen=keep)
        self._on_complete = on_complete

    def add(self, report: TurnReport) -> None:
        with self._lock:
            if len(self._order) == self._order.maxlen:
                self._turns.pop(self._order[0], None)
            self._order.append(report.line_id)
            self._turns[report.line_id] = report

    def mark(self, line_id: int, field_name: str, when: float | None = None) -> None:
        callback = None
        with self._lock:
            report = self._turns.get(line_id)
            if report is None or getattr(report, field_name) is not None:
                return
            setattr(report, field_name, time.monotonic() if when is None else when)
            if field_name == "muxed":
                callback = self._on_complete
        if callback is not None:
            callback(report)

    def recent(self, n: int = 50) -> list[dict]:
        with self._lock:
            return [self._turns[i].as_dict() for i in list(self._order)[-n:] if i in self._turns]


class TrackingSink:
    """The speech stage's sink: the mixer, noting when each line's first audio is ready."""

    def __init__(self, mixer, turns: TurnLog):
        self.mixer, self.turns = mixer, turns

    def push(self, pcm, caption, line_id) -> None:
        self.turns.mark(line_id, "audio_ready")
        if not self.mixer.push(pcm, caption, line_id):
            log.warning("line %d: speech queue full, sentence dropped", line_id)

    def cut(self, fade_ms: float = 5.0) -> None:
        self.mixer.cut(fade_ms)


@dataclass
class _Pending:
    kind: str
    text: str
    arrived: float
    user: str | None = None
    message: ChatMessage | None = None


class FloorHolder(Protocol):
    """Someone the anchor must not talk over (the host, mid-utterance)."""

    def floor_held(self) -> bool: ...


class Conversation:
    """on_interrupt() is called (on the interrupting thread) after each interrupt();
    on_turn_start(item) and on_turn_end(item, report) on the loop around each turn."""

    def __init__(self, stage, responder: Responder, mixer, *, intake=None,
                 script: ScriptSchedule | None = None, thanks: ThanksQueue | None = None,
                 host_name: str = "Host",
                 turns: TurnLog | None = None, gap_s: float = 0.35, max_say_queue: int = 32,
                 on_interrupt: Callable[[], None] | None = None,
                 on_turn_start: Callable[[_Pending], None] | None = None,
                 on_turn_end: Callable[[_Pending, TurnReport], None] | None = None):
        self.stage, self.responder, self.mixer = stage, responder, mixer
        self.intake = intake
        self.script = script
        self.thanks = thanks
        self._last_kind: str | None = None
        self.host_name = host_name
        self.turns = turns or TurnLog()
        self.gap_s = gap_s
        self._say: deque[_Pending] = deque()
        self._host: deque[_Pending] = deque(maxlen=4)
        self.max_say_queue = max_say_queue
        self._ids = itertools.count(1)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._interrupted = 0
        self.started_at = time.monotonic()
        self.quiet_since = self.started_at
        self.current: _Pending | None = None
        self._on_interrupt = on_interrupt
        self._on_turn_start = on_turn_start
        self._on_turn_end = on_turn_end
        self._floor_holders: tuple[FloorHolder, ...] = ()
        if intake is not None:
            intake.listeners.append(lambda _msg: self._poke())

    def add_floor_holder(self, holder: FloorHolder) -> None:
        """While holder.floor_held() is true no new turn starts."""
        self._floor_holders = (*self._floor_holders, holder)

    def floor_held(self) -> bool:
        return any(holder.floor_held() for holder in self._floor_holders)

    def set_responder(self, responder: Responder) -> None:
        """The next viewer or host turn uses `responder` (a reload)."""
        self.responder = responder

    def set_script(self, script: ScriptSchedule | None) -> None:
        self.script = script

    def set_thanks(self, thanks: ThanksQueue | None) -> None:
        self.thanks = thanks

    def thank(self, event: ChatEvent) -> None:
        """A gift, follow or entrance (on the loop): thanked in a line of its own when the
        scene thanks its kind, folded with others and rate-limited (thanks.ThanksQueue)."""
        if self.thanks is not None and self.thanks.note(event, time.monotonic()):
            self._poke()

    # -- inputs (say/host are thread-safe) ---------------------------------------------
    def say(self, text: str, interrupt: bool = False) -> bool:
        """Queue a line (False when the queue is full); with interrupt, cut what is on air first."""
        if len(self._say) >= self.max_say_queue and not interrupt:
            return False
        item = _Pending("say", text, time.monotonic())
        if interrupt:
            self._say.appendleft(item)
            self.interrupt()
        else:
            self._say.append(item)
        self._poke()
        return True

    def host_said(self, text: str, speaker: str | None = None) -> None:
        """A final transcript from the host's microphone: answered before anything else."""
        self._host.append(_Pending("host", text, time.monotonic(), user=speaker or self.host_name))
        self._poke()

    def interrupt(self) -> None:
        """Stop the anchor now (any thread): speech cut with a short fade, avatar to idle."""
        self._interrupted += 1
        self.stage.interrupt()
        if self._on_interrupt is not None:
            self._on_interrupt()
        self._poke()

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:   # the loop has closed: nobody is waiting
            pass

    # -- the loop ----------------------------------------------------------------------
    def pending(self) -> dict[str, int]:
        return {"host": len(self._host), "say": len(self._say),
                "chat": self.intake.selector.pending() if self.intake is not None else 0}

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while not stop.is_set():
            now = time.monotonic()
            due = self.script is not None and self.script.due(now, self.quiet_since, self.started_at)
            held = self.floor_held()
            thanks_due = self.thanks is not None and self.thanks.due(now)
            kind = None if held else choose_turn(self.pending(), due, thanks_due, self._last_kind)
            item = self._take(kind, now) if kind else None
            if item is None:
                wait = 0.1 if held else 1.0
                if self.script is not None:
                    wait = min(wait, max(0.05, self.script.next_wait(now, self.quiet_since, self.started_at)))
                if self.thanks is not None:
                    wait = min(wait, max(0.05, self.thanks.next_wait(now)))
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except asyncio.TimeoutError:
                    pass
                continue
            self._last_kind = item.kind
            try:
                await self._speak_turn(item)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one bad turn never ends the conversation
                log.exception("turn failed; the anchor carries on")
            self.quiet_since = time.monotonic()

    def _take(self, kind: str, now: float) -> _Pending | None:
        if kind == "host":
            return self._host.popleft()
        if kind == "say":
            return self._say.popleft()
        if kind == "chat":
            msg = self.intake.pick()
            if msg is None:
                return None
            return _Pending("chat", msg.text, msg.time, user=msg.user, message=msg)
        if kind == "script":
            return _Pending("script", self.script.take(), now)
        if kind == "thanks":
            text = self.thanks.take(now)
            return _Pending("thanks", text, now) if text else None
        return None

    async def _speak_turn(self, item: _Pending) -> None:
        line_id = next(self._ids)
        report = TurnReport(line_id, item.kind, item.user, item.text, arrived=item.arrived,
                            picked=time.monotonic())
        self.turns.add(report)
        self.current = item
        if self._on_turn_start is not None:
            self._on_turn_start(item)
        interrupted_before = self._interrupted
        if item.kind in ("chat", "host"):
            msg = item.message or ChatMessage(platform="mic", user=item.user or self.host_name,
                                              text=item.text, moderator=True)
            deltas = self.responder.respond(msg)
        else:
            deltas = _one(item.text)
        spoken: list[str] = []
        try:
            await self.stage.speak(self._observe(deltas, report, spoken), line_id)
            # the line is queued in the mixer: wait until it has played (or was cut)
            while not self.mixer.idle() and self._interrupted == interrupted_before:
                await asyncio.sleep(0.04)
        finally:
            report.spoken = "".join(spoken).strip()
            report.interrupted = self._interrupted != interrupted_before
            self.current = None
            close = getattr(deltas, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:  # noqa: BLE001
                    pass
        if self._on_turn_end is not None:
            self._on_turn_end(item, report)
        if not report.interrupted:
            await asyncio.sleep(self.gap_s)

    async def _observe(self, deltas: AsyncIterator[str], report: TurnReport, spoken: list[str]):
        """Pass text through, noting the first token and the first complete sentence."""
        splitter = SentenceSplitter()
        async for delta in deltas:
            if report.first_delta is None:
                report.first_delta = time.monotonic()
            spoken.append(delta)
            if report.first_sentence is None and splitter.feed(delta):
                report.first_sentence = time.monotonic()
            yield delta
        if report.first_sentence is None:
            report.first_sentence = time.monotonic()


async def _one(text: str):
    yield text

