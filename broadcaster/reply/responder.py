"""What every responder offers: a chat message in, the anchor's reply out as streamed text."""

from __future__ import annotations

from typing import AsyncIterator, Protocol

from broadcaster.chat.message import ChatMessage


class Responder(Protocol):
    name: str

    def respond(self, msg: ChatMessage) -> AsyncIterator[str]:
        """Text deltas of the reply (an async generator). Never raises into the caller except
        on cancellation: a failure is spoken as a fallback line or ends the reply early."""
        ...

    async def close(self) -> None:
        """Release connections; the responder is not used afterwards."""
        ...
