"""The one message type every chat source produces, so moderation and responders see one shape."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field, replace

_ids = itertools.count(1)


def _next_id() -> str:
    return f"local-{next(_ids)}"


@dataclass(frozen=True)
class ChatMessage:
    """A viewer's chat line.

    time is time.monotonic() seconds at arrival (never wall-clock), so expiry and rate limits
    are immune to clock steps. paid_amount is in the currency's major unit (e.g. 5.0 USD);
    Twitch bits are reported as currency "BITS" with the bit count as the amount.
    """

    platform: str
    user: str
    text: str
    time: float = field(default_factory=time.monotonic)
    moderator: bool = False
    member: bool = False
    paid_amount: float = 0.0
    currency: str = ""
    id: str = field(default_factory=_next_id)

    @property
    def paid(self) -> bool:
        return self.paid_amount > 0

    def with_text(self, text: str) -> "ChatMessage":
        """Copy with new text (moderation cleans text without touching the rest)."""
        return replace(self, text=text)

    def to_json(self) -> dict:
        """Plain dict for WebSocket events and overlays."""
        return {"platform": self.platform, "user": self.user, "text": self.text,
                "moderator": self.moderator, "member": self.member,
                "paid_amount": self.paid_amount, "currency": self.currency, "id": self.id}


@dataclass(frozen=True)
class ChatEvent:
    """Something a viewer did that is not a line to answer: a gift, a follow, an entrance.

    Sources emit it like a message; the intake hands it to its event listeners (the scene's
    thank-yous) instead of the selection queue. A gift bought with money carries paid_amount
    (major currency unit), so it ranks with paid messages wherever viewers are ordered.
    """

    platform: str
    kind: str                   # gift | follow | entrance
    user: str
    time: float = field(default_factory=time.monotonic)
    gift: str = ""
    count: int = 0
    paid_amount: float = 0.0
    currency: str = ""

    @property
    def paid(self) -> bool:
        return self.paid_amount > 0
