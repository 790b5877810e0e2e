"""Chat moderation and selection as a pure policy: offer() and pick() take `now` explicitly.

offer() decides whether a message may wait for the anchor (length, blocklists, per-user rate,
near-duplicates) and keeps a bounded queue; pick() hands the anchor the next message: paid
first, then moderators, then everyone else, and inside a tier the viewer answered least
recently (never-answered first), so one loud viewer cannot hold the anchor. Every drop is
counted by reason. All state is bounded, so a flood cannot grow memory.
"""

from __future__ import annotations

import difflib
import itertools
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Union

from broadcaster.chat.message import ChatEvent, ChatMessage
from broadcaster.chat.sanitize import clean_text, compile_word_pattern, dedup_key
from broadcaster.schema import is_number

# Drop reasons (stable strings: they are counter labels and HTTP/WebSocket error texts).
EMPTY = "empty"
TOO_LONG = "too_long"
BLOCKED_USER = "blocked_user"
BLOCKED_WORD = "blocked_word"
RATE_LIMITED = "rate_limited"
DUPLICATE = "duplicate"
USER_BACKLOG = "user_backlog"
QUEUE_FULL = "queue_full"
EVICTED = "evicted"      # a queued message pushed out by a newer/higher-priority one
EXPIRED = "expired"      # a queued message that waited longer than max_age_s
REASONS = (EMPTY, TOO_LONG, BLOCKED_USER, BLOCKED_WORD, RATE_LIMITED, DUPLICATE, USER_BACKLOG,
           QUEUE_FULL, EVICTED, EXPIRED)


@dataclass(frozen=True)
class SelectionConfig:
    """Settings under `chat.selection` in the config (all optional)."""

    max_chars: int = 300            # longer (after cleaning) is refused: too_long
    max_user_chars: int = 40        # user names are cut to this
    blocked_words: tuple[str, ...] = ()
    blocked_users: tuple[str, ...] = ()
    user_max_messages: int = 3      # per user per user_window_s (paid/moderator exempt)
    user_window_s: float = 30.0
    dedup_window_s: float = 120.0   # identical (normalised) text from anyone in this window
    dedup_similarity: float = 0.9   # same user's recent lines this similar are duplicates
    max_queue: int = 100
    max_per_user_queued: int = 2
    max_age_s: float = 60.0
    tracked_users: int = 5000       # bound on per-user state (rate, fairness)
    dedup_memory: int = 2000        # bound on remembered recent texts

    @classmethod
    def from_dict(cls, data: dict | None, where: str = "chat.selection") -> "SelectionConfig":
        """Build from a config mapping; unknown keys or bad types raise ValueError naming them."""
        if data is not None and not isinstance(data, dict):
            raise ValueError(f"{where}: expected a mapping")
        data = dict(data or {})
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
        kwargs = {}
        for key, value in data.items():
            default = getattr(cls, key)
            if isinstance(default, tuple):
                if not isinstance(value, (list, tuple)) or not all(isinstance(v, str)
                                                                   for v in value):
                    raise ValueError(f"{where}.{key}: expected a list of strings, got {value!r}")
                kwargs[key] = tuple(value)
            elif isinstance(default, int) and not isinstance(default, bool):
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ValueError(f"{where}.{key}: expected a non-negative integer, "
                                     f"got {value!r}")
                kwargs[key] = value
            else:
                if not is_number(value) or value < 0:
                    raise ValueError(f"{where}.{key}: expected a non-negative number, "
                                     f"got {value!r}")
                kwargs[key] = float(value)
        return cls(**kwargs)


@dataclass(frozen=True)
class Accepted:
    message: ChatMessage   # the cleaned message that was queued
    accepted: bool = field(default=True, init=False)


@dataclass(frozen=True)
class Refused:
    reason: str
    accepted: bool = field(default=False, init=False)


@dataclass(frozen=True)
class Noted:
    """An event (gift, follow, entrance): not a line to answer, so never queued; the intake
    passed it to its event listeners."""
    event: ChatEvent
    accepted: bool = field(default=True, init=False)


Decision = Union[Accepted, Refused, Noted]


def tier(msg: ChatMessage | ChatEvent) -> int:
    """Priority tier: paid 2, moderator 1, everyone else 0."""
    if msg.paid:
        return 2
    if getattr(msg, "moderator", False):
        return 1
    return 0


@dataclass
class _Queued:
    message: ChatMessage
    arrived: float
    seq: int
    tier: int


class ChatSelector:
    """The moderation + selection policy. Not thread-safe: call from one asyncio loop."""

    def __init__(self, config: SelectionConfig | None = None) -> None:
        self.config = config or SelectionConfig()
        self._words = compile_word_pattern(self.config.blocked_words)
        self._blocked_users = {u.casefold() for u in self.config.blocked_users}
        self._queue: list[_Queued] = []
        self._seq = itertools.count()
        # user -> deque of accept times (rate limit) ; LRU-ordered and bounded.
        self._recent_by_user: OrderedDict[str, deque[float]] = OrderedDict()
        # user -> deque of (time, dedup key) of the user's last few lines.
        self._lines_by_user: OrderedDict[str, deque[tuple[float, str]]] = OrderedDict()
        # user -> when the anchor last picked them (fairness); LRU-ordered and bounded.
        self._answered: OrderedDict[str, float] = OrderedDict()
        # recent dedup keys from everyone: FIFO of (time, key) plus a multiset.
        self._recent_keys: deque[tuple[float, str]] = deque()
        self._key_counts: dict[str, int] = {}
        self.counters: dict[str, int] = {r: 0 for r in REASONS}
        self.counters["accepted"] = 0
        self.counters["picked"] = 0
        self.counters["removed"] = 0

    # ---- public API -------------------------------------------------------------------
    def offer(self, msg: ChatMessage, now: float) -> Decision:
        """Clean and judge a message; queue it if accepted."""
        cfg = self.config
        text = clean_text(msg.text)
        user = clean_text(msg.user)[: cfg.max_user_chars] or "viewer"
        if not text:
            return self._refuse(EMPTY)
        if len(text) > cfg.max_chars:
            return self._refuse(TOO_LONG)
        if user.casefold() in self._blocked_users:
            return self._refuse(BLOCKED_USER)
        if self._words is not None and self._words.search(text):
            return self._refuse(BLOCKED_WORD)
        ukey = user.casefold()
        exempt = msg.paid or msg.moderator
        times = self._touch(self._recent_by_user, ukey, deque)
        while times and now - times[0] > cfg.user_window_s:
            times.popleft()
        if not exempt and len(times) >= cfg.user_max_messages:
            return self._refuse(RATE_LIMITED)
        key = dedup_key(text)
        self._forget_keys(now)
        lines = self._touch(self._lines_by_user, ukey, lambda: deque(maxlen=5))
        if not msg.paid and (key in self._key_counts or self._similar(lines, key, now)):
            return self._refuse(DUPLICATE)
        self._expire(now)
        t = tier(msg)
        mine = [q for q in self._queue if q.message.user.casefold() == ukey]
        if len(mine) >= cfg.max_per_user_queued and not msg.paid:
            return self._refuse(USER_BACKLOG)
        if len(self._queue) >= cfg.max_queue:
            victim = min(self._queue, key=lambda q: (q.tier, q.seq))
            if victim.tier > t:
                return self._refuse(QUEUE_FULL)
            self._queue.remove(victim)
            self.counters[EVICTED] += 1
        cleaned = msg.__class__(platform=msg.platform, user=user, text=text, time=msg.time,
                                moderator=msg.moderator, member=msg.member,
                                paid_amount=msg.paid_amount, currency=msg.currency, id=msg.id)
        self._queue.append(_Queued(cleaned, now, next(self._seq), t))
        times.append(now)
        lines.append((now, key))
        self._remember_key(now, key)
        self.counters["accepted"] += 1
        return Accepted(cleaned)

    def pick(self, now: float) -> ChatMessage | None:
        """Return the next message for the anchor (and dequeue it), or None when none waits."""
        self._expire(now)
        if not self._queue:
            return None
        top = max(q.tier for q in self._queue)
        never = float("-inf")
        best = min((q for q in self._queue if q.tier == top),
                   key=lambda q: (self._answered.get(q.message.user.casefold(), never), q.seq))
        self._queue.remove(best)
        self._touch(self._answered, best.message.user.casefold(), float)
        self._answered[best.message.user.casefold()] = now
        self.counters["picked"] += 1
        return best.message

    def pending(self) -> int:
        return len(self._queue)

    def queued(self, now: float) -> list[tuple[ChatMessage, float]]:
        """The waiting messages with how long each has waited, in arrival order (a read-only
        view for the studio page; expired messages are dropped first)."""
        self._expire(now)
        return [(q.message, now - q.arrived) for q in sorted(self._queue, key=lambda q: q.seq)]

    def remove(self, message_id: str) -> ChatMessage | None:
        """Take a waiting message out of the queue (an operator skipped it); None when no
        message with that id waits (already picked, expired or never queued)."""
        for q in self._queue:
            if q.message.id == message_id:
                self._queue.remove(q)
                self.counters["removed"] += 1
                return q.message
        return None

    def drops(self) -> dict[str, int]:
        """Counts of messages dropped, by reason (only non-zero)."""
        return {r: self.counters[r] for r in REASONS if self.counters[r]}

    def state_sizes(self) -> dict[str, int]:
        """Sizes of every internal container (for tests and /metrics: memory stays bounded)."""
        return {"queue": len(self._queue), "rate_users": len(self._recent_by_user),
                "line_users": len(self._lines_by_user), "answered": len(self._answered),
                "recent_keys": len(self._recent_keys), "key_counts": len(self._key_counts)}

    # ---- internals --------------------------------------------------------------------
    def _refuse(self, reason: str) -> Refused:
        self.counters[reason] += 1
        return Refused(reason)

    def _touch(self, table: OrderedDict, key: str, factory):
        """Get-or-create table[key], mark it most recent, evict the least recent over bound."""
        value = table.get(key)
        if value is None:
            value = table[key] = factory()
            while len(table) > self.config.tracked_users:
                table.popitem(last=False)
        else:
            table.move_to_end(key)
        return value

    def _similar(self, lines: deque, key: str, now: float) -> bool:
        threshold = self.config.dedup_similarity
        for when, old in lines:
            if now - when <= self.config.dedup_window_s and old and key and \
                    difflib.SequenceMatcher(None, old, key).ratio() >= threshold:
                return True
        return False

    def _remember_key(self, now: float, key: str) -> None:
        self._recent_keys.append((now, key))
        self._key_counts[key] = self._key_counts.get(key, 0) + 1
        while len(self._recent_keys) > self.config.dedup_memory:
            self._drop_oldest_key()

    def _forget_keys(self, now: float) -> None:
        while self._recent_keys and now - self._recent_keys[0][0] > self.config.dedup_window_s:
            self._drop_oldest_key()

    def _drop_oldest_key(self) -> None:
        _, key = self._recent_keys.popleft()
        left = self._key_counts[key] - 1
        if left:
            self._key_counts[key] = left
        else:
            del self._key_counts[key]

    def _expire(self, now: float) -> None:
        max_age = self.config.max_age_s
        if any(now - q.arrived > max_age for q in self._queue):
            kept = [q for q in self._queue if now - q.arrived <= max_age]
            self.counters[EXPIRED] += len(self._queue) - len(kept)
            self._queue = kept
