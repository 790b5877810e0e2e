"""Turn-taking, as pure policy: who the anchor answers next, and when a scripted line is due.

The host (microphone) always goes first, then lines queued with /say, then a due thank-you
(gifts, follows), then a viewer picked by the chat selector; a scripted line is spoken only
after the anchor has been quiet for its interval. A thank-you goes before waiting viewers
(it is short and thanks them promptly) but never twice in a row while a viewer waits, so a
stream of gifts delays a question by at most one short line. All inputs are counts and times, so it is tested with plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

PRIORITY = ("host", "say", "chat")


def choose_turn(pending: dict[str, int], script_due: bool, thanks_due: bool = False,
                last_kind: str | None = None) -> str | None:
    """The kind of the next turn (host, say, thanks, chat, script) or None; last_kind is the
    kind of the turn just spoken."""
    for kind in PRIORITY:
        if kind == "chat" and thanks_due and last_kind != "thanks":
            return "thanks"
        if pending.get(kind, 0) > 0:
            return kind
    if thanks_due:
        return "thanks"
    return "script" if script_due else None


@dataclass
class ScriptSchedule:
    """Scene script lines spoken every `every_s` of quiet, in order, looping if asked."""

    lines: tuple[str, ...]
    every_s: float = 30.0
    start_after_s: float = 3.0
    loop: bool = True
    index: int = 0

    def due(self, now: float, quiet_since: float, started_at: float) -> bool:
        if not self.lines or (not self.loop and self.index >= len(self.lines)):
            return False
        if self.index == 0 and now - started_at >= self.start_after_s and now - quiet_since >= self.start_after_s:
            return True
        return now - quiet_since >= self.every_s

    def next_wait(self, now: float, quiet_since: float, started_at: float) -> float:
        """Seconds until due() can become true (for sleeping); inf when never."""
        if not self.lines or (not self.loop and self.index >= len(self.lines)):
            return float("inf")
        gap = self.start_after_s if self.index == 0 else self.every_s
        return max(0.0, quiet_since + gap - now)

    def take(self) -> str:
        line = self.lines[self.index % len(self.lines)]
        self.index += 1
        return line


def script_schedule(data, source: str) -> ScriptSchedule | None:
    from broadcaster.schema import Section
    if data is None:
        return None
    if isinstance(data, list):
        data = {"lines": data}
    sec = Section(data, source, "script")
    sec.allow_only(("lines", "every_s", "start_after_s", "loop"))
    lines = sec.items("lines")
    for i, line in enumerate(lines):
        if not isinstance(line, str) or not line.strip():
            raise sec.error(f"lines[{i}]", "must be non-empty text")
    return ScriptSchedule(tuple(lines), every_s=sec.number("every_s", 30.0, minimum=1, maximum=86400),
                          start_after_s=sec.number("start_after_s", 3.0, minimum=0, maximum=3600),
                          loop=sec.boolean("loop", True))
