"""Thank-yous for gifts, follows and entrances, as a pure policy: note(event, now), due(now),
take(now) -> the line to say.

A scene's `thanks:` section gives a template per kind for one viewer (`gift`, `follow`,
`entrance`) and one for several folded together (`gifts`, `follows`, `entrances`). Events
gather for `gather_s` after the first (a gift combo arrives as a burst), and a thank-you is
due at most once per `min_interval_s`; everything noted meanwhile is folded into that one
line: "谢谢A、B和另外3位的礼物!". Paying givers are named first. The turn policy
(turns.choose_turn) never lets a thank-you take a waiting viewer's turn twice in a row.
Memory is bounded: past `max_tracked` viewers per kind only a count is kept.
"""

from __future__ import annotations

import string
from collections import OrderedDict
from dataclasses import dataclass, field

from broadcaster.chat.message import ChatEvent

KINDS = ("gift", "follow", "entrance")
PLURAL = {"gift": "gifts", "follow": "follows", "entrance": "entrances"}
# the placeholders each template may use
FIELDS_ONE = {"gift": {"user", "gift", "num"}, "follow": {"user"}, "entrance": {"user"}}
FIELDS_MANY = {"users", "count"}


@dataclass(frozen=True)
class ThanksSettings:
    one: dict[str, str] = field(default_factory=dict)     # kind -> template for one viewer
    many: dict[str, str] = field(default_factory=dict)    # kind -> template for several
    separator: str = ", "
    last: str = " and "
    others: str = "{n} others"
    max_names: int = 3
    min_interval_s: float = 20.0
    gather_s: float = 2.0
    max_tracked: int = 500


@dataclass
class _Viewer:
    user: str
    first: float
    paid: float = 0.0
    gifts: dict[str, int] = field(default_factory=dict)   # gift name -> count


class ThanksQueue:
    """What waits to be thanked, and when the next thank-you may be said."""

    def __init__(self, settings: ThanksSettings) -> None:
        self.settings = settings
        self._waiting: dict[str, OrderedDict[str, _Viewer]] = {k: OrderedDict() for k in KINDS}
        self._untracked: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._since: float | None = None     # when the oldest waiting event arrived
        self._last: float | None = None      # when the last thank-you was taken
        self.counters = {"noted": 0, "ignored": 0, "lines": 0}

    def reconfigure(self, settings: ThanksSettings) -> None:
        """New templates and limits (a reload); what waits is kept unless its kind is gone."""
        self.settings = settings
        for kind in KINDS:
            if kind not in settings.one:
                self._waiting[kind].clear()
                self._untracked[kind] = 0
        if not self.pending():
            self._since = None

    def note(self, event: ChatEvent, now: float) -> bool:
        """Remember an event; False when the scene does not thank its kind."""
        if event.kind not in self.settings.one:
            self.counters["ignored"] += 1
            return False
        self.counters["noted"] += 1
        waiting = self._waiting[event.kind]
        viewer = waiting.get(event.user)
        if viewer is None:
            if len(waiting) >= self.settings.max_tracked:
                self._untracked[event.kind] += 1
                return True
            viewer = waiting[event.user] = _Viewer(event.user, now)
        viewer.paid += event.paid_amount
        if event.kind == "gift":
            viewer.gifts[event.gift] = viewer.gifts.get(event.gift, 0) + max(1, event.count)
        if self._since is None:
            self._since = now
        return True

    def pending(self) -> int:
        """Viewers waiting to be thanked (all kinds)."""
        return sum(len(w) + self._untracked[k] for k, w in self._waiting.items())

    def due(self, now: float) -> bool:
        return self.next_wait(now) == 0.0

    def next_wait(self, now: float) -> float:
        """Seconds until a thank-you is due (0: now; inf: nothing waits)."""
        if self._since is None:
            return float("inf")
        ready = self._since + self.settings.gather_s
        if self._last is not None:
            ready = max(ready, self._last + self.settings.min_interval_s)
        return max(0.0, ready - now)

    def take(self, now: float) -> str | None:
        """The thank-you line for everything waiting (and forget it), or None when not due."""
        if not self.due(now):
            return None
        parts = [self._line(kind) for kind in KINDS
                 if self._waiting[kind] or self._untracked[kind]]
        for kind in KINDS:
            self._waiting[kind].clear()
            self._untracked[kind] = 0
        self._since = None
        self._last = now
        self.counters["lines"] += 1
        return " ".join(parts)

    def _line(self, kind: str) -> str:
        viewers = list(self._waiting[kind].values())
        untracked = self._untracked[kind]
        if len(viewers) == 1 and not untracked and len(viewers[0].gifts) <= 1:
            viewer = viewers[0]
            gift, num = next(iter(viewer.gifts.items()), ("", 0))
            return self.settings.one[kind].format(user=viewer.user, gift=gift, num=num)
        # paying viewers first (most first), then in arrival order
        order = sorted(range(len(viewers)), key=lambda i: (-viewers[i].paid, i))
        names = [viewers[i].user for i in order]
        count = len(names) + untracked
        return self.settings.many[kind].format(users=self._fold(names, untracked), count=count)

    def _fold(self, names: list[str], untracked: int) -> str:
        s = self.settings
        shown = names[:s.max_names]
        others = len(names) - len(shown) + untracked
        if others:
            return s.separator.join(shown) + s.last + s.others.format(n=others)
        if len(shown) == 1:
            return shown[0]
        return s.separator.join(shown[:-1]) + s.last + shown[-1]


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def thanks_settings(data, source: str) -> ThanksSettings | None:
    """The scene's `thanks:` section (None when absent); ConfigError naming the key."""
    from broadcaster.schema import Section
    if data is None:
        return None
    sec = Section(data, source, "thanks")
    sec.allow_only((*KINDS, *PLURAL.values(), "names", "max_names", "min_interval_s",
                    "gather_s"))

    def template(name: str, allowed: set[str]) -> str:
        text = sec.text(name)
        try:
            used = _placeholders(text)
        except ValueError as exc:
            raise sec.error(name, f"is not a valid template ({exc})") from None
        bad = sorted(used - allowed)
        if bad or any(not n or not n.isidentifier() for n in used):
            raise sec.error(name, f"unknown placeholder(s) {bad or sorted(used)}; "
                                  f"allowed: {', '.join('{%s}' % a for a in sorted(allowed))}")
        return text

    one, many = {}, {}
    for kind in KINDS:
        plural = PLURAL[kind]
        if sec.has(kind):
            one[kind] = template(kind, FIELDS_ONE[kind])
            if not sec.has(plural):
                raise sec.error(plural, f"is required with thanks.{kind} (the line for several "
                                        f"viewers folded together, with {{users}})")
            many[kind] = template(plural, FIELDS_MANY)
        elif sec.has(plural):
            raise sec.error(plural, f"needs thanks.{kind} (the line for one viewer)")
    if not one:
        raise sec.error("gift", f"set at least one of {', '.join(KINDS)}")
    names = sec.section("names")
    names.allow_only(("separator", "last", "others"))
    others = names.text("others", "{n} others")
    if _placeholders(others) != {"n"}:
        raise names.error("others", "must contain {n} (how many more) and no other placeholder")
    return ThanksSettings(
        one=one, many=many, separator=names.text("separator", ", ", allow_empty=True),
        last=names.text("last", " and ", allow_empty=True), others=others,
        max_names=sec.integer("max_names", 3, minimum=1, maximum=20),
        min_interval_s=sec.number("min_interval_s", 20.0, minimum=1, maximum=3600),
        gather_s=sec.number("gather_s", 2.0, minimum=0, maximum=60))
