"""Wire format between the broadcaster (client) and `asr-serve` (WebSocket).

Binary message = 5-byte header + one Opus packet (16 kHz mono, 20 ms, VOIP):
    byte 0     version (1)
    bytes 1-4  sequence number, uint32 big-endian, +1 per 20 ms frame (gaps = lost frames)
Text messages are JSON objects with a "type":
    client -> server  {"type": "hello", "token": ..., "codec": "opus", "sample_rate": 16000,
                       "frame_ms": 20}   first message, within HELLO_TIMEOUT_S
                      {"type": "end"}     no more audio: close the open utterance, reply "done"
    server -> client  {"type": "ready", "session": N}
                      {"type": "onset", "utt": N, "t": s}
                      {"type": "partial"|"final", "utt": N, "text": ..., "start": s, "end": s,
                       "latency_ms": ms, "decode_ms": ms}
                      {"type": "done", "frames": N}   after "end": all transcripts sent
                      {"type": "error", "code": ..., "message": ...} then a close with CLOSE_*
Times are seconds of the stream as received (sequence number x 20 ms).
"""

from __future__ import annotations

import hmac
import json
import struct

import numpy as np

VERSION = 1
HEADER = struct.Struct(">BI")
SAMPLE_RATE = 16000
FRAME_SAMPLES = 320
OPUS_BITRATE = 16000
MAX_MESSAGE = 4096          # application limit: larger messages get a JSON error + 1009
WS_MAX_SIZE = 65536         # websockets max_size: beyond this the library closes with 1009
HELLO_TIMEOUT_S = 5.0
TOKEN_ENV = "BROADCASTER_ASR_TOKEN"   # where both ends read the shared token by default

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL = 1002       # bad JSON, unknown message type
CLOSE_BAD_DATA = 1007       # wrong header, undecodable Opus
CLOSE_AUTH = 1008           # policy violation: missing/bad token
CLOSE_TOO_BIG = 1009


class ProtocolError(ValueError):
    def __init__(self, code: str, message: str, close_code: int) -> None:
        super().__init__(message)
        self.code, self.close_code = code, close_code


def pack_frame(seq: int, packet: bytes) -> bytes:
    return HEADER.pack(VERSION, seq & 0xFFFFFFFF) + packet


def unpack_frame(data: bytes) -> tuple[int, bytes]:
    if len(data) <= HEADER.size:
        raise ProtocolError("bad_frame", f"binary message of {len(data)} bytes is shorter than header+payload",
                            CLOSE_BAD_DATA)
    version, seq = HEADER.unpack_from(data)
    if version != VERSION:
        raise ProtocolError("bad_frame", f"unsupported frame version {version} (expected {VERSION})", CLOSE_BAD_DATA)
    return seq, bytes(data[HEADER.size:])


def token_ok(given: object, expected: str) -> bool:
    """Constant-time token comparison."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def parse_json(text: str) -> dict:
    try:
        msg = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("bad_json", f"text message is not JSON: {exc}", CLOSE_PROTOCOL) from exc
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError("bad_json", "text message must be a JSON object with a string 'type'", CLOSE_PROTOCOL)
    return msg


def error_message(code: str, message: str) -> str:
    return json.dumps({"type": "error", "code": code, "message": message})


class OpusEncoder:
    """float32 20 ms frames -> Opus packets (VOIP, 16 kbit/s VBR by default)."""

    def __init__(self, bitrate: int = OPUS_BITRATE) -> None:
        import opuslib
        self._enc = opuslib.Encoder(SAMPLE_RATE, 1, opuslib.APPLICATION_VOIP)
        self._enc.bitrate = bitrate

    def encode(self, frame: np.ndarray) -> bytes:
        pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        return self._enc.encode(pcm, FRAME_SAMPLES)


class OpusDecoder:
    """Opus packets -> float32 frames; b"" (a lost packet) gives packet-loss concealment."""

    def __init__(self) -> None:
        import opuslib
        self._dec = opuslib.Decoder(SAMPLE_RATE, 1)

    def decode(self, packet: bytes) -> np.ndarray:
        import opuslib
        try:
            pcm = self._dec.decode(packet, FRAME_SAMPLES)
        except opuslib.OpusError as exc:
            raise ProtocolError("bad_frame", f"undecodable Opus packet: {exc}", CLOSE_BAD_DATA) from exc
        return np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
