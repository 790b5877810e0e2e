"""Chat lines typed in a terminal (or piped in): one line, one message.

A line "@name text" posts as viewer `name`; any other line posts as the configured user.
EOF ends the source (it does not reconnect). Reading goes through the event loop, so stop
takes effect at once and no thread is left blocked in read().
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time

from broadcaster.chat.message import ChatMessage
from broadcaster.chat.source import Emit, race_stop

log = logging.getLogger(__name__)


def line_to_message(line: str, default_user: str, now: float,
                    platform: str = "stdin") -> ChatMessage | None:
    text = line.strip()
    user = default_user
    if text.startswith("@") and " " in text:
        user, text = text[1:].split(" ", 1)
        text = text.strip()
    if not text or not user:
        return None
    return ChatMessage(platform=platform, user=user, text=text, time=now)


class StdinSource:
    """Settings under `chat.sources[]` with `type: stdin` (key: user)."""

    def __init__(self, fd: int = 0, user: str = "host", platform: str = "stdin") -> None:
        self.fd, self.user, self.platform = fd, user, platform
        self.name = "stdin"
        self.counters: dict[str, int] = {"messages": 0}

    def _emit_line(self, raw: bytes, emit: Emit) -> None:
        msg = line_to_message(raw.decode("utf-8", errors="replace"), self.user,
                              time.monotonic(), self.platform)
        if msg is not None:
            self.counters["messages"] += 1
            emit(msg)

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        try:
            mode = os.fstat(self.fd).st_mode
        except OSError as exc:
            log.warning("stdin chat: cannot read fd %d: %s", self.fd, exc)
            return
        if stat.S_ISREG(mode):  # a file redirected to stdin: finite, read it directly
            with os.fdopen(os.dup(self.fd), "rb") as fh:
                for raw in fh:
                    if stop.is_set():
                        break
                    self._emit_line(raw, emit)
            return
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        pipe = os.fdopen(os.dup(self.fd), "rb", buffering=0)
        try:
            transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), pipe)
        except (OSError, ValueError) as exc:
            pipe.close()
            log.warning("stdin chat: cannot watch fd %d: %s", self.fd, exc)
            return
        try:
            while not stop.is_set():
                raw = await race_stop(reader.readline(), stop, None)
                if not raw:  # None: stopped; b"": end of input
                    break
                self._emit_line(raw, emit)
        except Exception as exc:  # noqa: BLE001 - never raise into the broadcast
            log.warning("stdin chat: %s", exc)
        finally:
            transport.close()
