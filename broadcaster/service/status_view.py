"""A one-line terminal status (on air, ingest, bitrate, fps, queue delay, speaker, last chat).

Redrawn about once a second in place when stdout is a terminal and the process is not run
by systemd (INVOCATION_ID or JOURNAL_STREAM set): there, the journal and /metrics serve.
Everything shown is scrubbed: the ingest URL through redact_url, chat text through
redact_text, and control characters removed so a viewer cannot inject terminal escapes.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO

from broadcaster.redact import redact_text, redact_url


@dataclass(frozen=True)
class StatusSnapshot:
    """What the station knows right now (ServiceRuntime.snapshot builds it from Health,
    Metrics, the current speaker and the last chat line)."""

    on_air: bool
    ingest: str                      # output URL or file path (redacted when shown)
    bitrate_bps: float | None = None  # encoder target
    fps: float | None = None
    queue_delay_s: float | None = None
    speaker: str | None = None       # "anchor", "host", or None when nobody speaks
    last_chat: str | None = None     # "author: text"
    degraded: tuple[str, ...] = ()   # reason keys from Health


def _clean(text: str) -> str:
    return "".join(c if c.isprintable() else " " for c in text)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def render_status_line(snapshot: StatusSnapshot, width: int = 120, color: bool = False) -> str:
    """One line, at most `width` characters (ANSI colour codes not counted)."""
    state = "ON AIR" if snapshot.on_air else "OFF AIR"
    parts = [
        _clean(redact_url(snapshot.ingest)),
        f"{snapshot.bitrate_bps / 1000:.0f} kbit/s" if snapshot.bitrate_bps is not None
        else "- kbit/s",
        f"{snapshot.fps:.1f} fps" if snapshot.fps is not None else "- fps",
        f"queue {snapshot.queue_delay_s * 1000:.0f} ms" if snapshot.queue_delay_s is not None
        else "queue -",
        f"speaking: {_clean(snapshot.speaker) if snapshot.speaker else '-'}",
    ]
    if snapshot.degraded:
        parts.append("degraded: " + ",".join(_clean(k) for k in snapshot.degraded))
    if snapshot.last_chat:
        parts.append("chat: " + _clean(redact_text(snapshot.last_chat)))
    line = _fit(f"{state:<7} | " + " | ".join(parts), width)
    if color:
        paint = "\x1b[1;41;97m" if snapshot.on_air else "\x1b[1;100;97m"
        line = line.replace(state, f"{paint}{state}\x1b[0m", 1)
    return line


def status_view_enabled(stream: IO[str], env: Mapping[str, str] | None = None) -> bool:
    """True when stream is a terminal and systemd did not start us."""
    env = os.environ if env is None else env
    if env.get("INVOCATION_ID") or env.get("JOURNAL_STREAM"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class StatusView:
    """Redraws the status line every interval_s on a non-daemon thread; stop() joins it.

    get_snapshot is called on that thread and must be cheap and thread-safe.
    """

    def __init__(self, get_snapshot: Callable[[], StatusSnapshot],
                 stream: IO[str] | None = None, interval_s: float = 1.0,
                 env: Mapping[str, str] | None = None) -> None:
        self._get_snapshot = get_snapshot
        self._stream = sys.stdout if stream is None else stream
        self._interval_s = interval_s
        self.enabled = status_view_enabled(self._stream, env)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one writer at a time on the terminal
        self._line = ""  # the status line currently shown ("" when none)

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="status-view")
        self._thread.start()

    def draw_once(self) -> None:
        width = shutil.get_terminal_size((120, 24)).columns - 1
        line = render_status_line(self._get_snapshot(), width=width, color=True)
        with self._lock:
            # \r + erase line: the status line always sits below the last log line.
            self._stream.write("\r\x1b[2K" + line)
            self._stream.flush()
            self._line = line

    def wrap_log_stream(self, stream: IO[str]) -> IO[str]:
        """A stream for configure_logging(stream=...) that keeps logs and status apart.

        Each log write first erases the status line, then the status is redrawn under the
        log line, so the two never share a terminal line. Unchanged when the view is off.
        """
        return _StatusAwareStream(self, stream) if self.enabled else stream

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.draw_once()
            except Exception:  # a status line must never take the broadcast down
                pass
            self._stop.wait(self._interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            with self._lock:
                self._stream.write("\r\x1b[2K")
                self._stream.flush()
                self._line = ""


class _StatusAwareStream:
    """Wraps the log stream: erase the status line, write the log, redraw the status."""

    def __init__(self, view: StatusView, stream: IO[str]) -> None:
        self._view = view
        self._stream = stream

    def write(self, text: str) -> int:
        view = self._view
        with view._lock:
            if view._line:
                view._stream.write("\r\x1b[2K")
                view._stream.flush()
            written = self._stream.write(text)
            self._stream.flush()
            if view._line and text.endswith("\n"):
                view._stream.write(view._line)
                view._stream.flush()
            return written

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()
