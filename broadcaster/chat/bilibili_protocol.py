"""The Bilibili live-room WebSocket protocol, pure: packet framing, compressed batches and the
mapping of commands to chat messages and events.

Every WebSocket message holds one or more packets, each a 16-byte big-endian header
(packet length u32, header length u16 = 16, protocol version u16, operation u32, sequence u32)
and a body. Version 0 bodies are JSON, version 1 bodies a heartbeat's text or the popularity
(u32), and versions 2 (zlib) and 3 (brotli) bodies are themselves concatenated packets.
Nothing here does I/O, so every case is tested with bytes.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass

from broadcaster.chat.message import ChatEvent, ChatMessage

HEADER = struct.Struct(">IHHII")
HEADER_LEN = HEADER.size      # 16

# protocol versions
PLAIN = 0
INT = 1                       # heartbeat bodies and the popularity reply
ZLIB = 2
BROTLI = 3

# operations
HEARTBEAT = 2
HEARTBEAT_REPLY = 3
COMMAND = 5
AUTH = 7
AUTH_REPLY = 8

HEARTBEAT_BODY = b"[object Object]"   # what the web client sends
MAX_PACKET = 1 << 20                  # a bigger length field is a corrupt stream
MAX_INFLATED = 4 << 20                # a batch inflating beyond this is refused
MAX_NESTING = 2                       # a compressed batch inside a compressed batch is the limit


class ProtocolError(ValueError):
    """A packet or batch that cannot be read; the rest of the stream may still be fine."""


@dataclass(frozen=True)
class Packet:
    """One packet: the header's version, operation and sequence, and its body."""

    version: int
    operation: int
    body: bytes
    sequence: int = 1


def encode(packet: Packet) -> bytes:
    """One packet: header and body."""
    return HEADER.pack(HEADER_LEN + len(packet.body), HEADER_LEN, packet.version,
                       packet.operation, packet.sequence) + packet.body


def auth_packet(room_id: int, uid: int = 0, key: str = "", buvid: str = "",
                platform: str = "web") -> bytes:
    """The first packet a client sends: enter room `room_id` (operation 7), asking for brotli
    batches (protover 3). key is the token from getDanmuInfo (a secret: never logged)."""
    body = {"uid": uid, "roomid": room_id, "protover": BROTLI, "platform": platform, "type": 2}
    if buvid:
        body["buvid"] = buvid
    if key:
        body["key"] = key
    data = json.dumps(body, separators=(",", ":")).encode()
    return encode(Packet(INT, AUTH, data))


def heartbeat_packet() -> bytes:
    return encode(Packet(INT, HEARTBEAT, HEARTBEAT_BODY))


def _inflate(version: int, body: bytes) -> bytes:
    if version == ZLIB:
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(body, MAX_INFLATED)
        except zlib.error as exc:
            raise ProtocolError(f"bad zlib batch: {exc}") from None
        if inflater.unconsumed_tail:
            raise ProtocolError(f"zlib batch inflates beyond {MAX_INFLATED} bytes")
        return data
    import brotli
    inflater = brotli.Decompressor()
    try:
        data = inflater.process(body, output_buffer_limit=MAX_INFLATED)
    except brotli.error as exc:
        raise ProtocolError(f"bad brotli batch: {exc}") from None
    if not inflater.is_finished() or len(data) > MAX_INFLATED:
        raise ProtocolError(f"brotli batch truncated or inflating beyond {MAX_INFLATED} bytes")
    return data


def decode(data: bytes, _depth: int = 0) -> tuple[list[Packet], list[ProtocolError]]:
    """Every packet in one WebSocket message, compressed batches opened, and the errors met.

    A bad batch is one error and is skipped; a bad header ends the message (the lengths that
    follow cannot be trusted), keeping the packets read before it.
    """
    packets: list[Packet] = []
    errors: list[ProtocolError] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < HEADER_LEN:
            errors.append(ProtocolError(f"{len(data) - offset} stray bytes after the last packet"))
            break
        length, header_len, version, operation, sequence = HEADER.unpack_from(data, offset)
        if header_len != HEADER_LEN or length < header_len or length > MAX_PACKET \
                or offset + length > len(data):
            errors.append(ProtocolError(
                f"bad header at byte {offset}: length {length}, header length {header_len}, "
                f"{len(data) - offset} bytes left"))
            break
        body = bytes(data[offset + header_len:offset + length])
        offset += length
        if operation == COMMAND and version in (ZLIB, BROTLI):
            if _depth >= MAX_NESTING:
                errors.append(ProtocolError("compressed batches nested too deep"))
                continue
            try:
                inner, inner_errors = decode(_inflate(version, body), _depth + 1)
            except ProtocolError as exc:
                errors.append(exc)
                continue
            packets.extend(inner)
            errors.extend(inner_errors)
        else:
            packets.append(Packet(version, operation, body, sequence))
    return packets, errors


def popularity(packet: Packet) -> int:
    """The viewer count ("popularity") a heartbeat reply carries."""
    if len(packet.body) < 4:
        raise ProtocolError(f"heartbeat reply of {len(packet.body)} bytes (expected 4)")
    return struct.unpack_from(">I", packet.body)[0]


def json_body(packet: Packet) -> dict:
    try:
        value = json.loads(packet.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"operation {packet.operation}: body is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"operation {packet.operation}: body is not a JSON object")
    return value


GOLD_PER_YUAN = 1000          # gifts bought with gold coins: 1000 = 1 CNY; silver ones are free


def command_to_item(command: dict, now: float,
                    platform: str = "bilibili") -> ChatMessage | ChatEvent | None:
    """A command (operation 5's JSON) as a chat message (danmaku, super chat), an event (gift,
    follow, entrance) or None for the many commands a chat has no use for. Raises
    ProtocolError when a command it reads lacks what it needs."""
    cmd = str(command.get("cmd", "")).split(":", 1)[0]
    try:
        if cmd == "DANMU_MSG":
            info = command["info"]
            if len(info[0]) > 9 and info[0][9]:
                return None     # typed automatically to join a lottery or a gift storm
            user = info[2]
            return ChatMessage(platform=platform, user=str(user[1]), text=str(info[1]), time=now,
                               moderator=len(user) > 2 and user[2] == 1)
        data = command.get("data")
        if cmd == "SUPER_CHAT_MESSAGE":
            return ChatMessage(platform=platform, user=str(data["user_info"]["uname"]),
                               text=str(data["message"]), time=now,
                               paid_amount=float(data["price"]), currency="CNY",
                               **_id(data, "sc"))
        if cmd == "SEND_GIFT":
            paid = data.get("coin_type") == "gold"
            amount = float(data.get("total_coin", 0) or 0) / GOLD_PER_YUAN if paid else 0.0
            return ChatEvent(platform=platform, kind="gift", user=str(data["uname"]), time=now,
                             gift=str(data["giftName"]), count=int(data.get("num", 1) or 1),
                             paid_amount=amount, currency="CNY" if amount else "")
        if cmd == "INTERACT_WORD":
            kind = {1: "entrance", 2: "follow"}.get(data.get("msg_type"))
            if kind is None:
                return None
            return ChatEvent(platform=platform, kind=kind, user=str(data["uname"]), time=now)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ProtocolError(f"{cmd} without the expected fields ({type(exc).__name__}: {exc})") \
            from None
    return None


def _id(data: dict, prefix: str) -> dict:
    value = data.get("id")
    return {"id": f"bilibili-{prefix}-{value}"} if value is not None else {}
