"""A local Bilibili live-room WebSocket server: the frames of broadcastlv.chat.bilibili.com/sub,
byte for byte, written here with struct on their own (not with the broadcaster's encoder, so
a mistake on one side is not mirrored on the other).

It checks the auth packet (header, JSON fields, room id), answers it with operation 8
{"code": 0} (or the refusal code set in `refuse_code`), answers every heartbeat with the
popularity (unless told to go quiet), sends commands as plain, zlib or brotli batches (several packets concatenated,
as the real server does), sends raw bytes, and can drop every connection. Every packet a
client sent is recorded in `received` as (header fields, body).
"""

from __future__ import annotations

import asyncio
import json
import struct
import zlib

import brotli
from websockets.asyncio.server import serve

HEADER = ">IHHII"


def frame(version: int, operation: int, body: bytes, sequence: int = 0) -> bytes:
    """One packet as the server writes it (the server's sequence is 0)."""
    return struct.pack(HEADER, 16 + len(body), 16, version, operation, sequence) + body


def command(payload: dict) -> bytes:
    """A plain (version 0) command packet."""
    return frame(0, 5, json.dumps(payload, ensure_ascii=False).encode())


def batch(payloads: list[dict], mode: str) -> bytes:
    """Commands in one WebSocket message: `plain` concatenates them, `zlib` (version 2) and
    `brotli` (version 3) compress the concatenation into one outer command packet."""
    inner = b"".join(command(p) for p in payloads)
    if mode == "plain":
        return inner
    if mode == "zlib":
        return frame(2, 5, zlib.compress(inner))
    if mode == "brotli":
        return frame(3, 5, brotli.compress(inner))
    raise ValueError(mode)


def danmaku(user: str, text: str, uid: int = 1001, admin: bool = False, auto: int = 0) -> dict:
    """A DANMU_MSG as the room sends it (info[1] text, info[2] [uid, name, admin, ...]);
    auto (info[0][9]) 1 or 2: typed automatically for a lottery or a gift storm."""
    return {"cmd": "DANMU_MSG:4:0:2:2:2:0",
            "info": [[0, 1, 25, 16777215, 1733300000000, 1733300000, 0, "8d3c0a1e", 0, auto, 0, "",
                      0, "{}", "{}", {"mode": 0}],
                     text, [uid, user, 1 if admin else 0, 0, 0, 10000, 1, ""],
                     [], [0, 0, 9868950, ">50000", 0], ["", ""], 0, 0, None,
                     {"ts": 1733300000, "ct": "D5A1B3F2"}, 0, 0, None, None, 0, 105]}


def gift(user: str, name: str, num: int = 1, price: int = 100, coin_type: str = "gold") -> dict:
    return {"cmd": "SEND_GIFT", "data": {
        "uname": user, "uid": 2002, "giftName": name, "giftId": 31036, "num": num,
        "price": price, "coin_type": coin_type, "total_coin": price * num, "action": "投喂",
        "timestamp": 1733300000}}


def super_chat(user: str, message: str, price: int = 30, sc_id: int = 9001) -> dict:
    return {"cmd": "SUPER_CHAT_MESSAGE", "data": {
        "id": sc_id, "uid": 3003, "message": message, "price": price, "time": 60,
        "user_info": {"uname": user, "face": "", "guard_level": 0}}}


def interact(user: str, msg_type: int) -> dict:
    """INTERACT_WORD: msg_type 1 entered the room, 2 followed."""
    return {"cmd": "INTERACT_WORD", "data": {"uname": user, "uid": 4004, "msg_type": msg_type,
                                             "roomid": 0, "timestamp": 1733300000}}


class FakeBilibiliServer:
    """Serve on the caller's running loop: `url = await server.start()`."""

    def __init__(self, room_id: int, popularity: int = 4242, refuse_code: int = 0) -> None:
        self.room_id = room_id
        self.popularity = popularity
        self.refuse_code = refuse_code
        self.answer_heartbeats = True     # False: a link that went quiet
        self.received: list[tuple[tuple[int, int, int, int, int], bytes]] = []
        self.auths: list[dict] = []
        self.heartbeats = 0
        self.connections = 0
        self.problems: list[str] = []     # what the clients sent that the real server refuses
        self.entered = asyncio.Event()    # a client is in the room
        self._clients: set = set()
        self._server = None
        self.url = ""

    async def start(self) -> str:
        self._server = await serve(self._client, "127.0.0.1", 0)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/sub"
        return self.url

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _client(self, ws) -> None:
        self.connections += 1
        try:
            async for data in ws:
                if isinstance(data, str):
                    self.problems.append("text frame")
                    continue
                offset = 0
                while offset + 16 <= len(data):
                    header = struct.unpack_from(HEADER, data, offset)
                    body = bytes(data[offset + 16:offset + header[0]])
                    offset += header[0]
                    self.received.append((header, body))
                    await self._answer(ws, header, body)
        except Exception:   # noqa: BLE001 - a dropped client ends its handler
            pass
        finally:
            self._clients.discard(ws)
            if not self._clients:
                self.entered.clear()

    async def _answer(self, ws, header, body: bytes) -> None:
        length, header_len, version, operation, _sequence = header
        if header_len != 16 or length != 16 + len(body):
            self.problems.append(f"bad header {header}")
        if operation == 7:
            auth = json.loads(body)
            self.auths.append(auth)
            good = (version == 1 and auth.get("roomid") == self.room_id
                    and auth.get("protover") == 3 and auth.get("type") == 2
                    and isinstance(auth.get("uid"), int) and auth.get("platform"))
            if not good:
                self.problems.append(f"bad auth {version} {auth}")
            code = self.refuse_code if good else -101
            await ws.send(frame(1, 8, json.dumps({"code": code}).encode()))
            if code == 0:
                self._clients.add(ws)
                self.entered.set()
            else:
                await ws.close()
        elif operation == 2:
            if version != 1 or ws not in self._clients:
                self.problems.append(f"heartbeat out of place: {header}")
            self.heartbeats += 1
            if self.answer_heartbeats:
                await ws.send(frame(1, 3, struct.pack(">I", self.popularity)))
        else:
            self.problems.append(f"unexpected operation {operation}")

    async def send_raw(self, data: bytes) -> None:
        """One WebSocket message to every client in the room."""
        for ws in list(self._clients):
            await ws.send(data)

    async def send(self, payloads: list[dict], mode: str = "plain") -> None:
        await self.send_raw(batch(payloads, mode))

    async def drop_all(self) -> None:
        """End every connection without a closing handshake (a network drop)."""
        self.entered.clear()
        for ws in list(self._clients):
            ws.transport.abort()
        self._clients.clear()
