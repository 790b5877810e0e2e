"""Bilibili live-room chat over the live WebSocket (`chat.sources[]` with `type: bilibili`).

Enters the room with the auth packet, sends a heartbeat every `heartbeat_s` (the server
answers with the room's popularity), and reads danmaku and super chats as chat messages and
gifts, follows and entrances as events (framing and mapping in bilibili_protocol). A packet
that cannot be read is skipped and logged at most once a minute; a silent, dropped or
refused connection is reconnected with backoff. The key (from the environment) is
registered with redact() and never logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from broadcaster.backoff import Backoff
from broadcaster.chat import bilibili_protocol as proto
from broadcaster.chat.message import ChatEvent
from broadcaster.chat.source import Emit, read_with_timeout, run_with_reconnect
from broadcaster.logthrottle import LogThrottle
from broadcaster.redact import register_secret

log = logging.getLogger(__name__)
# websockets dumps every frame at DEBUG, the auth packet (and its key, in hex) included
_ws_log = logging.getLogger(__name__ + ".websocket")
_ws_log.setLevel(logging.INFO)

DEFAULT_URL = "wss://broadcastlv.chat.bilibili.com/sub"
MAX_MESSAGE_BYTES = 1 << 20


def _whole(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"chat bilibili source: '{name}' must be a whole number >= {minimum}, "
                         f"got {value!r}")
    return value


class RoomRefused(ConnectionError):
    """The server answered the auth packet with a non-zero code (bad key, unknown room)."""


class BilibiliSource:
    """Read one live room. room_id is the room's long id (the number in
    live.bilibili.com/<id> can be a short alias; getRoomInitInfo names the long one)."""

    def __init__(self, room_id: int, *, uid: int = 0, key_env: str = "BILIBILI_KEY",
                 buvid: str = "", url: str = DEFAULT_URL, heartbeat_s: float = 30.0,
                 connect_timeout_s: float = 10.0, backoff: Backoff | None = None,
                 platform: str = "bilibili") -> None:
        self.room_id = _whole(room_id, "room_id", 1)
        self.uid = _whole(uid, "uid", 0)
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise ValueError(f"chat bilibili source: 'url' must start with ws:// or wss://, "
                             f"got {url!r}")
        for name, value in (("heartbeat_s", heartbeat_s), ("connect_timeout_s", connect_timeout_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0.05 <= value <= 600:
                raise ValueError(f"chat bilibili source: '{name}' must be a number of seconds "
                                 f"between 0.05 and 600, got {value!r}")
        if not isinstance(buvid, str):
            raise ValueError("chat bilibili source: 'buvid' must be text")
        self._key = os.environ.get(key_env, "").strip() if key_env else ""
        register_secret(self._key)
        if self._key and not self.uid:
            raise ValueError(f"chat bilibili source: 'uid' is required when {key_env} is set "
                             f"(the account the key belongs to)")
        self.buvid = buvid
        self.url = url
        self.heartbeat_s = float(heartbeat_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self.backoff = backoff or Backoff(max_s=300.0)
        self.platform = platform
        self.name = f"bilibili:{room_id}"
        self.counters: dict[str, int] = {"messages": 0, "events": 0, "malformed": 0,
                                         "heartbeats": 0}
        self.popularity: int | None = None
        self.entered = asyncio.Event()   # set while in the room (tests wait on it)
        self._throttle = LogThrottle(60.0)

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        await run_with_reconnect(self.name, lambda: self._session(emit), stop,
                                 self.backoff, log, self.counters)

    async def _session(self, emit: Emit) -> None:
        from websockets.asyncio.client import connect
        async with connect(self.url, open_timeout=self.connect_timeout_s, ping_interval=None,
                           max_size=MAX_MESSAGE_BYTES, close_timeout=2, logger=_ws_log) as ws:
            await ws.send(proto.auth_packet(self.room_id, self.uid, self._key, self.buvid))
            log.info("%s: entering the room at %s as %s", self.name, self.url,
                     f"uid {self.uid} (key)" if self._key else "a guest")
            heartbeats = None
            try:
                while not self.entered.is_set():
                    self._read(await read_with_timeout(ws.recv(), self.connect_timeout_s), emit)
                log.info("%s: in the room", self.name)
                self.backoff.reset()
                heartbeats = asyncio.ensure_future(self._heartbeats(ws))
                # the server answers every heartbeat: two periods of silence is a dead link
                while True:
                    self._read(await read_with_timeout(ws.recv(), 2 * self.heartbeat_s), emit)
            except asyncio.TimeoutError:
                raise ConnectionError("the room went silent (no heartbeat reply)") from None
            finally:
                self.entered.clear()
                if heartbeats is not None:
                    heartbeats.cancel()
                    await asyncio.gather(heartbeats, return_exceptions=True)

    async def _heartbeats(self, ws) -> None:
        while True:
            await ws.send(proto.heartbeat_packet())
            self.counters["heartbeats"] += 1
            await asyncio.sleep(self.heartbeat_s)

    def _read(self, data: bytes | str, emit: Emit) -> None:
        now = time.monotonic()
        if isinstance(data, str):
            self._malformed(proto.ProtocolError("a text frame (packets come as binary)"), now)
            return
        packets, errors = proto.decode(data)
        for error in errors:
            self._malformed(error, now)
        for packet in packets:
            try:
                self._handle(packet, emit, now)
            except proto.ProtocolError as exc:
                self._malformed(exc, now)

    def _handle(self, packet: proto.Packet, emit: Emit, now: float) -> None:
        if packet.operation == proto.AUTH_REPLY:
            code = proto.json_body(packet).get("code", 0)
            if code != 0:
                raise RoomRefused(f"the server refused to enter the room (code {code!r}); "
                                  f"check room_id, uid and the key")
            self.entered.set()
        elif packet.operation == proto.HEARTBEAT_REPLY:
            self.popularity = proto.popularity(packet)
        elif packet.operation == proto.COMMAND:
            item = proto.command_to_item(proto.json_body(packet), now, self.platform)
            if item is None:
                return
            if isinstance(item, ChatEvent):
                self.counters["events"] += 1
            else:
                self.counters["messages"] += 1
            emit(item)

    def _malformed(self, error: proto.ProtocolError, now: float) -> None:
        self.counters["malformed"] += 1
        held = self._throttle.allow("malformed", now)
        if held is not None:
            more = f" ({held} more since the last report)" if held else ""
            log.warning("%s: skipped a packet that cannot be read: %s%s", self.name, error, more)
