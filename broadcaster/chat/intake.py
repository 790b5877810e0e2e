"""Glue between sources and the selection policy: every source emits into one selector.

ChatIntake.offer is both the sources' emit and the on_message of add_chat_routes; the
conversation calls `pick()` when a chat turn is due. Listeners (the conversation's wake-up,
the status view's last chat) hear each accepted message; decision listeners (metrics) hear
every decision. Events (gifts, follows, entrances) are never queued: event listeners (the
scene's thank-yous) hear them. A bounded log of what happened to recent messages (refused with the reason,
picked, removed) serves the studio page. One asyncio loop owns it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Callable

from broadcaster.chat.message import ChatEvent, ChatMessage
from broadcaster.chat.selection import Accepted, ChatSelector, Decision, Noted, Refused
from broadcaster.chat.source import ChatSource

log = logging.getLogger(__name__)


class ChatIntake:
    def __init__(self, selector: ChatSelector, sources: list[ChatSource] = (),
                 clock: Callable[[], float] = time.monotonic, log_size: int = 50) -> None:
        self.selector, self.sources, self.clock = selector, list(sources), clock
        self.listeners: list[Callable[[ChatMessage], None]] = []
        # every decision, accepted or refused (metrics): callback(message, decision)
        self.decision_listeners: list[Callable[[ChatMessage, Decision], None]] = []
        # gifts, follows, entrances: callback(event)
        self.event_listeners: list[Callable[[ChatEvent], None]] = []
        self._available = asyncio.Event()
        self._log: deque[dict] = deque(maxlen=log_size)

    def offer(self, msg: ChatMessage | ChatEvent) -> Decision:
        if isinstance(msg, ChatEvent):
            return self._notice(msg)
        decision = self.selector.offer(msg, self.clock())
        if isinstance(decision, Refused):
            self._note(msg, "refused", decision.reason)
        for listener in self.decision_listeners:
            listener(msg, decision)
        if isinstance(decision, Accepted):
            self._available.set()
            for listener in self.listeners:
                try:
                    listener(decision.message)
                except Exception:  # noqa: BLE001 - an overlay bug must not drop chat
                    log.exception("chat listener failed")
        return decision

    def _notice(self, event: ChatEvent) -> Noted:
        for listener in self.event_listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a listener bug must not drop chat
                log.exception("chat event listener failed")
        return Noted(event)

    def pick(self) -> ChatMessage | None:
        msg = self.selector.pick(self.clock())
        if self.selector.pending() == 0:
            self._available.clear()
        if msg is not None:
            self._note(msg, "picked")
        return msg

    def remove(self, message_id: str) -> ChatMessage | None:
        """Skip a waiting message (the operator's call); None when it no longer waits."""
        msg = self.selector.remove(message_id)
        if msg is not None:
            self._note(msg, "removed")
            if self.selector.pending() == 0:
                self._available.clear()
        return msg

    def queue(self) -> list[dict]:
        """The messages waiting for the anchor, oldest first, with their wait in seconds."""
        return [{**msg.to_json(), "waited_s": round(waited, 1)}
                for msg, waited in self.selector.queued(self.clock())]

    def recent(self) -> list[dict]:
        """What happened to recent messages, newest last: refused (with reason), picked, removed."""
        return list(self._log)

    def _note(self, msg: ChatMessage, outcome: str, reason: str | None = None) -> None:
        self._log.append({"id": msg.id, "user": msg.user, "text": msg.text[:300],
                          "outcome": outcome, "reason": reason, "at": self.clock()})

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until something may be waiting to be picked (True) or the timeout (False)."""
        try:
            await asyncio.wait_for(self._available.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def run(self, stop: asyncio.Event) -> None:
        """Run every source until stop is set; sources never raise, so neither does this."""
        await asyncio.gather(*(s.run(self.offer, stop) for s in self.sources),
                             return_exceptions=True)
