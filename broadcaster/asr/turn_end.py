"""When is the host's turn over? Silence plus what the words so far say, and how they sound.

A fixed silence wait is either slow (500 ms before every answer) or cuts hosts off when they
pause mid-sentence. Here the partial transcript of the audio up to the pause sets the wait:

  COMPLETE  ends with sentence-final punctuation (。？！.?!) or a finished question
            ("...吗", "...呢"): end after complete_ms of silence (200 ms). A bare period
            ("." or "。") counts only when the sound agrees: Whisper puts a period before
            every pause, so a bare period is COMPLETE only when the turn model
            (asr.smart_turn, when configured) hears a finished turn, or, without the model,
            when the pitch does not hold (asr.prosody: level or high at the pause); else it
            is UNCLEAR. A question or exclamation mark, or a Chinese sentence-final particle,
            stays COMPLETE.
  OPEN      ends mid-clause: a comma, a conjunction ("and", "because", "所以", "然后"), a
            filler ("um", "嗯", "那个"), an article or preposition; or the last sentence is
            only a subordinate clause ("If it rains tomorrow.", "如果明天下雨。") or announces
            what comes next ("I want to ask you.", "我想问一下。"), whatever punctuation
            Whisper gave it: wait up to hold_ms (1 s).
  UNCLEAR   words without either cue: the old fixed wait, unclear_ms (500 ms).
  NO_TEXT   the pause's transcript is not back yet: unclear_ms too, so a slow decoder
            behaves as before rather than worse.

TurnEndPolicy is pure (text, pitch contour, the model's P(complete), speech end, now ->
decision); TurnEndGate is the thread-safe meeting point where the ASR thread leaves the
pause's text and what the sound said, and the VAD asks for a decision.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from broadcaster.asr.prosody import Contour


class TurnCue(Enum):
    COMPLETE = "complete"
    OPEN = "open"
    UNCLEAR = "unclear"
    NO_TEXT = "no_text"


SENTENCE_END = "。？！.?!…"
BARE_PERIOD = ".。…"     # Whisper writes these before any pause: the pitch must agree
CLAUSE_OPEN = ",，、;；:：-—"
CLOSERS = "\"'”’」』）)]"
# last words that leave the sentence open (English, lower case)
OPEN_WORDS_EN = frozenset("""
and but because or nor if when while although though unless until whose the a an to of with
for from at by than my your our their um uh er erm hmm
""".split())
# endings that leave a Chinese sentence open: conjunctions, fillers, linking words, the end of
# a time clause ("吃完饭以后", "小的时候")
OPEN_ENDINGS_ZH = ("所以", "但是", "可是", "不过", "然后", "因为", "而且", "并且", "还有", "或者", "如果",
                   "虽然", "那么", "那个", "这个", "就是", "的话", "比如", "嗯", "呃", "额", "和", "跟",
                   "与", "或", "但", "的时候", "以后", "之后", "以前", "之前")
# endings that finish a Chinese question or sentence without punctuation
COMPLETE_ENDINGS_ZH = ("吗", "呢", "吧", "嘛", "么")
# a sentence that starts with one of these needs a main clause after a comma
SUBORDINATE_EN = re.compile(r"^(if|because|when|whenever|while|although|though|unless|since|once|before|after|"
                            r"as soon as|even if|even though)\b[^,;:]*$", re.IGNORECASE)
SUBORDINATE_ZH = re.compile(r"^(如果|要是|假如|因为|由于|虽然|尽管|即使|哪怕|只要|除非|既然|当|等到)[^，,；;：:]*$")
# announcing what comes next: "I want to ask you", "let me tell you", "我想问一下"
ANNOUNCE_EN = re.compile(r"\b(ask|tell|say|show) (you|everyone|everybody)?$|\b(i mean|i think|you know)$", re.IGNORECASE)
ANNOUNCE_ZH = re.compile(r"(问(你|您|大家)?一下|问问|说一下|说说|讲一下|问你|告诉你|告诉大家|我想说|我觉得|就是说)$")
_LAST_SENTENCE = re.compile(r"[^。？！.?!…]*[。？！.?!…]*$")
_CJK_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_LAST_WORD = re.compile(r"([A-Za-z']+)\W*$")


def turn_cue(text: str | None, contour: Contour = Contour.UNKNOWN, p_complete: float | None = None,
             threshold: float = 0.7) -> TurnCue:
    """What the end of a (partial) transcript, and the sound of the speech before the pause,
    say about the sentence being finished. p_complete: the turn model's P(finished turn), None
    without a model; then the pitch contour (UNKNOWN: the words alone decide) stands in."""
    if text is None:
        return TurnCue.NO_TEXT
    body = text.strip().rstrip(CLOSERS).rstrip()
    if not body:
        return TurnCue.UNCLEAR
    if body[-1] not in "?？!！":     # "...sunny and." is not a finished sentence; a question is
        words = body.rstrip(SENTENCE_END + CLAUSE_OPEN).rstrip()
        last = _LAST_WORD.search(words)
        if last and last.group(1).lower() in OPEN_WORDS_EN or words.endswith(OPEN_ENDINGS_ZH):
            return TurnCue.OPEN
        sentence = _LAST_SENTENCE.search(words).group().strip()
        if any(p.search(sentence) for p in (SUBORDINATE_EN, SUBORDINATE_ZH, ANNOUNCE_EN, ANNOUNCE_ZH)):
            return TurnCue.OPEN
    if body[-1] in CLAUSE_OPEN:
        return TurnCue.OPEN
    if body.rstrip(BARE_PERIOD).endswith(COMPLETE_ENDINGS_ZH) and _CJK_CHAR.search(body.rstrip(BARE_PERIOD)[-1]):
        return TurnCue.COMPLETE
    if body[-1] in BARE_PERIOD:
        if p_complete is not None:
            return TurnCue.COMPLETE if p_complete >= threshold else TurnCue.UNCLEAR
        return TurnCue.UNCLEAR if contour is Contour.HELD else TurnCue.COMPLETE
    if body[-1] in SENTENCE_END:
        return TurnCue.COMPLETE
    return TurnCue.UNCLEAR


@dataclass(frozen=True)
class TurnEndConfig:
    complete_ms: float = 200.0   # silence after a finished sentence
    unclear_ms: float = 500.0    # no cue either way (the VAD's min_silence_ms)
    hold_ms: float = 1000.0      # mid-clause: the longest wait
    model: Path | None = None    # a Smart Turn v3 ONNX file (asr.smart_turn); None: pitch alone
    threshold: float = 0.7       # the model's P(complete) that lets a bare period end the turn

    def validate(self) -> "TurnEndConfig":
        if not 0 < self.complete_ms <= self.unclear_ms <= self.hold_ms:
            raise ValueError(f"turn end waits must satisfy 0 < complete_ms ({self.complete_ms:g}) <= "
                             f"min_silence_ms ({self.unclear_ms:g}) <= hold_ms ({self.hold_ms:g})")
        if not 0 < self.threshold < 1:
            raise ValueError(f"turn end threshold must be between 0 and 1, got {self.threshold:g}")
        return self

    @property
    def max_wait_s(self) -> float:
        return self.hold_ms / 1000.0


@dataclass(frozen=True)
class TurnDecision:
    end: bool
    cue: TurnCue
    wait_s: float       # silence this cue needs
    contour: Contour = Contour.UNKNOWN
    p_complete: float | None = None     # the turn model's verdict (None: no model, or not back)


class TurnEndPolicy:
    """Pure: the pause's transcript, pitch contour and the turn model's P(complete), when the
    speech stopped and now (same clock) -> end?"""

    def __init__(self, config: TurnEndConfig = TurnEndConfig()) -> None:
        self.config = config.validate()

    def wait_s(self, cue: TurnCue) -> float:
        c = self.config
        ms = {TurnCue.COMPLETE: c.complete_ms, TurnCue.OPEN: c.hold_ms}.get(cue, c.unclear_ms)
        return ms / 1000.0

    def decide(self, text: str | None, speech_end: float, now: float,
               contour: Contour = Contour.UNKNOWN, p_complete: float | None = None) -> TurnDecision:
        cue = turn_cue(text, contour, p_complete, self.config.threshold)
        wait = self.wait_s(cue)
        return TurnDecision(now - speech_end >= wait - 1e-9, cue, wait, contour, p_complete)


class TurnEndGate:
    """Where the ASR side leaves the transcript, pitch contour and turn model's verdict on the
    audio up to a pause (heard) and the VAD asks, on each silent window, whether the turn is
    over (should_end). Thread-safe: the two sides run on different threads. A transcript
    counts only for the pause it was made for (same utterance and speech end), so a stale one
    never ends a resumed sentence. model: the loaded turn model (asr.smart_turn.SmartTurn),
    which the transcriber runs on each pause, or None."""

    def __init__(self, policy: TurnEndPolicy, model=None) -> None:
        self.policy = policy
        self.model = model
        self._lock = threading.Lock()
        self._heard: tuple[int, float, str, Contour, float | None] | None = None
        self.last: TurnDecision | None = None

    @property
    def max_wait_s(self) -> float:
        return self.policy.config.max_wait_s

    def heard(self, utt_id: int, speech_end: float, text: str, contour: Contour = Contour.UNKNOWN,
              p_complete: float | None = None) -> None:
        with self._lock:
            self._heard = (utt_id, speech_end, text, contour, p_complete)

    def heard_for(self, utt_id: int, speech_end: float) -> tuple[str | None, Contour, float | None]:
        """The text, contour and P(complete) left for this pause (None, UNKNOWN, None: nothing
        yet)."""
        with self._lock:
            h = self._heard
        if h is not None and h[0] == utt_id and h[1] == speech_end:
            return h[2], h[3], h[4]
        return None, Contour.UNKNOWN, None

    def should_end(self, utt_id: int, speech_end: float, now: float) -> bool:
        text, contour, p_complete = self.heard_for(utt_id, speech_end)
        decision = self.policy.decide(text, speech_end, now, contour, p_complete)
        self.last = decision
        return decision.end
