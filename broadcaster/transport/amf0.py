"""AMF0, the value encoding of RTMP commands (connect, publish, onStatus) and of FLV metadata.

Only what an RTMP publisher meets: numbers, booleans, strings, objects, ECMA and strict
arrays, null/undefined, dates (decoded as their milliseconds). Objects decode to dicts.
"""

from __future__ import annotations

import struct

NUMBER, BOOLEAN, STRING, OBJECT, NULL, UNDEFINED = 0x00, 0x01, 0x02, 0x03, 0x05, 0x06
ECMA_ARRAY, OBJECT_END, STRICT_ARRAY, DATE, LONG_STRING = 0x08, 0x09, 0x0A, 0x0B, 0x0C


class Amf0Error(ValueError):
    """Bytes that are not valid AMF0 (or a type this decoder does not know)."""


def encode(*values) -> bytes:
    """The AMF0 encoding of each value in turn (None is null, a dict an object)."""
    return b"".join(_encode_one(v) for v in values)


def _encode_str(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        return bytes([LONG_STRING]) + struct.pack(">I", len(raw)) + raw
    return bytes([STRING]) + struct.pack(">H", len(raw)) + raw


def _encode_one(value) -> bytes:
    if value is None:
        return bytes([NULL])
    if isinstance(value, bool):
        return bytes([BOOLEAN, 1 if value else 0])
    if isinstance(value, (int, float)):
        return bytes([NUMBER]) + struct.pack(">d", float(value))
    if isinstance(value, str):
        return _encode_str(value)
    if isinstance(value, dict):
        body = b"".join(_key(k) + _encode_one(v) for k, v in value.items())
        return bytes([OBJECT]) + body + b"\x00\x00" + bytes([OBJECT_END])
    if isinstance(value, (list, tuple)):
        return bytes([STRICT_ARRAY]) + struct.pack(">I", len(value)) + \
            b"".join(_encode_one(v) for v in value)
    raise TypeError(f"AMF0 cannot encode {type(value).__name__}")


def _key(name: str) -> bytes:
    raw = name.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def decode(data: bytes) -> list:
    """Every value in data, in order."""
    values = []
    pos = 0
    while pos < len(data):
        value, pos = _decode_one(data, pos)
        values.append(value)
    return values


def _need(data: bytes, pos: int, n: int) -> None:
    if pos + n > len(data):
        raise Amf0Error(f"AMF0 value cut short at byte {pos} (need {n} more)")


def _decode_one(data: bytes, pos: int):
    _need(data, pos, 1)
    marker = data[pos]
    pos += 1
    if marker == NUMBER:
        _need(data, pos, 8)
        return struct.unpack_from(">d", data, pos)[0], pos + 8
    if marker == BOOLEAN:
        _need(data, pos, 1)
        return data[pos] != 0, pos + 1
    if marker == STRING:
        return _decode_str(data, pos, 2)
    if marker == LONG_STRING:
        return _decode_str(data, pos, 4)
    if marker in (NULL, UNDEFINED):
        return None, pos
    if marker == OBJECT:
        return _decode_props(data, pos)
    if marker == ECMA_ARRAY:
        _need(data, pos, 4)
        return _decode_props(data, pos + 4)      # the count is a hint; the end marker ends it
    if marker == STRICT_ARRAY:
        _need(data, pos, 4)
        count = struct.unpack_from(">I", data, pos)[0]
        pos += 4
        items = []
        for _ in range(count):
            item, pos = _decode_one(data, pos)
            items.append(item)
        return items, pos
    if marker == DATE:
        _need(data, pos, 10)
        return struct.unpack_from(">d", data, pos)[0], pos + 10
    raise Amf0Error(f"AMF0 type 0x{marker:02x} at byte {pos - 1} is not supported")


def _decode_str(data: bytes, pos: int, width: int):
    _need(data, pos, width)
    n = int.from_bytes(data[pos:pos + width], "big")
    pos += width
    _need(data, pos, n)
    return data[pos:pos + n].decode("utf-8", errors="replace"), pos + n


def _decode_props(data: bytes, pos: int):
    props = {}
    while True:
        _need(data, pos, 3)
        if data[pos:pos + 3] == b"\x00\x00" + bytes([OBJECT_END]):
            return props, pos + 3
        name, pos = _decode_str(data, pos, 2)
        props[name], pos = _decode_one(data, pos)
