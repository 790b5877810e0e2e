"""Glue between sources and the selection policy: every source emits into one selector.

ChatIntake.offer is both the sources' emit and the on_message of add_chat_routes; the
conversation calls `pick()` when a chat turn is due. Listeners (the conversation's wake-up,
the status view's last chat) hear each accepted message; decision listeners (metrics) hear
every decision. One asyncio loop owns it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from broadcaster.chat.message import ChatMessage
from broadcaster.chat.selection import Accepted, ChatSelector, Decision
from broadcaster.chat.source import ChatSource

log = logging.getLogger(__name__)


class ChatIntake:
    def __init__(self, selector: ChatSelector, sources: list[ChatSource] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.selector, self.sources, self.clock = selector, list(sources), clock
        self.listeners: list[Callable[[ChatMessage], None]] = []
        # every decision, accepted or refused (metrics): callback(message, decision)
        self.decision_listeners: list[Callable[[ChatMessage, Decision], None]] = []
        self._available = asyncio.Event()

    def offer(self, msg: ChatMessage) -> Decision:
        decision = self.selector.offer(msg, self.clock())
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

    def pick(self) -> ChatMessage | None:
        msg = self.selector.pick(self.clock())
        if self.selector.pending() == 0:
            self._available.clear()
        return msg

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
