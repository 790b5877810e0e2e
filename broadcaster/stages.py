"""How the stages of a station live together: one start/stop lifecycle and the events a stage
may subscribe to.

A station owns the broadcast and a list of stages (the live side, the host's microphone).
It starts them in the order they were added, after the broadcast, and stops them in reverse,
so a stage added later (the mic feeds the conversation) stops before the one it feeds. Stages
learn what happens elsewhere only through StationEvents (media ticks, interruptions, reloads,
muxed lines, going on and off air); none replaces another's attributes or hooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    import numpy as np

    from broadcaster.config import Config
    from broadcaster.media.mixer import MixChunk
    from broadcaster.scene import Scene

T = TypeVar("T")


class Stage(Protocol):
    """A part of a station with threads or tasks of its own."""

    name: str

    def start(self) -> None:
        """Called once the broadcast runs."""

    def stop(self) -> None:
        """Release everything; called once, also after a failed start."""


@dataclass(frozen=True)
class Tick:
    """One media slot, just handed to the encoder (published on the media thread)."""

    index: int
    chunk: "MixChunk"
    mixed_at: float             # monotonic time the slot's audio left the mixer
    rendered: bool              # a new picture (False: the previous one repeats)
    video_dropped: bool         # the encoder queue was full: this slot carries audio only
    render_s: float             # time spent composing the picture
    frame: "np.ndarray | None" = None   # the new yuv420p picture (None: the previous one repeats)
    anchor_late: bool = False   # the anchor's lip frame was not ready: the slot shows its idle frame


@dataclass(frozen=True)
class Interrupt:
    """The anchor was told to stop talking now (published on the interrupting thread)."""

    at: float                   # monotonic


@dataclass(frozen=True)
class Reload:
    """Config and scene were re-read (SIGHUP); the broadcast already shows the new scene."""

    config: "Config"
    scene: "Scene"


@dataclass(frozen=True)
class LinesMuxed:
    """The first audio of these speech lines reached the output (publisher thread)."""

    lines: tuple[int, ...]
    at: float                   # monotonic


@dataclass(frozen=True)
class AirState:
    """The output went on air (its first packet of a session was sent) or off air (the
    ingest connection ended); published on the publisher's thread."""

    on_air: bool
    at: float                   # monotonic


class Topic(Generic[T]):
    """Subscribers to one kind of event, called in subscription order on the publishing
    thread. Subscribing copies the list, so publishing never takes a lock."""

    def __init__(self) -> None:
        self._subscribers: tuple[Callable[[T], None], ...] = ()

    def subscribe(self, handler: Callable[[T], None]) -> None:
        self._subscribers = (*self._subscribers, handler)

    def publish(self, event: T) -> None:
        for handler in self._subscribers:
            handler(event)


class StationEvents:
    """Everything a stage may subscribe to."""

    def __init__(self) -> None:
        self.tick: Topic[Tick] = Topic()
        self.interrupt: Topic[Interrupt] = Topic()
        self.reload: Topic[Reload] = Topic()
        self.lines_muxed: Topic[LinesMuxed] = Topic()
        self.air: Topic[AirState] = Topic()
