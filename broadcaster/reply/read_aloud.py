"""The embedded default responder: no LLM, the anchor reads the selected message aloud."""

from __future__ import annotations

from typing import AsyncIterator

from broadcaster.chat.message import ChatMessage


class ReadAloudResponder:
    """Settings under `responder.read_aloud`: template, paid_template ({user} {text}
    {amount} {currency} placeholders)."""

    name = "read-aloud"

    def __init__(self, template: str = "{user} says: {text}",
                 paid_template: str = "{user} sent {amount} {currency} and says: {text}") -> None:
        for label, value in (("template", template), ("paid_template", paid_template)):
            try:
                value.format(user="u", text="t", amount=1, currency="c")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"responder.read_aloud.{label}: bad placeholder {exc} in "
                                 f"{value!r}; use {{user}} {{text}} {{amount}} {{currency}}")
        self.template, self.paid_template = template, paid_template
        self.counters = {"turns": 0}

    def line_for(self, msg: ChatMessage) -> str:
        template = self.paid_template if msg.paid else self.template
        text = msg.text.strip()
        if text and text[-1] not in ".!?":
            text += "."
        return template.format(user=msg.user, text=text, amount=f"{msg.paid_amount:g}",
                               currency=msg.currency)

    async def respond(self, msg: ChatMessage) -> AsyncIterator[str]:
        self.counters["turns"] += 1
        yield self.line_for(msg)

    async def close(self) -> None:
        return None
