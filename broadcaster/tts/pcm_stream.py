"""Streamed audio bytes -> float32 samples, for servers that send raw PCM or a streamed WAV.

Network reads end anywhere, also inside a sample or inside the WAV header: both decoders keep
what they cannot use yet and return the samples that are complete.
"""
from __future__ import annotations

import struct

import numpy as np


class S16Decoder:
    """Raw signed 16-bit little-endian mono bytes -> float32 in [-1, 1)."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> np.ndarray:
        data = self._rest + data
        usable = len(data) - len(data) % 2
        self._rest = data[usable:]
        return np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0


class WavFormatError(ValueError):
    """The stream does not start with a RIFF/WAVE header this decoder can read."""


class WavStreamDecoder:
    """A streamed WAV (RIFF header, `fmt `, then `data` whose size may be 0 or 0xFFFFFFFF
    because the server did not know it yet) -> float32 mono. `rate` is known once the header
    is through; only 16-bit PCM, mono, is accepted (what the TTS servers send)."""

    def __init__(self, max_header_bytes: int = 4096) -> None:
        self._buf = b""
        self._max_header = max_header_bytes
        self._pcm: S16Decoder | None = None
        self.rate: int | None = None

    def feed(self, data: bytes) -> np.ndarray:
        if self._pcm is not None:
            return self._pcm.feed(data)
        self._buf += data
        start = self._parse_header()
        if start is None:
            if len(self._buf) > self._max_header:
                raise WavFormatError(f"no WAV data chunk in the first {self._max_header} bytes")
            return np.zeros(0, np.float32)
        self._pcm = S16Decoder()
        rest, self._buf = self._buf[start:], b""
        return self._pcm.feed(rest)

    def _parse_header(self) -> int | None:
        """Offset of the first sample once the header is complete, else None."""
        buf = self._buf
        if len(buf) < 12:
            return None
        if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
            raise WavFormatError(f"not a WAV stream (starts with {buf[:12]!r})")
        pos = 12
        while len(buf) >= pos + 8:
            cid, size = buf[pos:pos + 4], struct.unpack("<I", buf[pos + 4:pos + 8])[0]
            if cid == b"data":
                if self.rate is None:
                    raise WavFormatError("WAV data chunk before its fmt chunk")
                return pos + 8
            if len(buf) < pos + 8 + size:
                return None
            if cid == b"fmt ":
                fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", buf[pos + 8:pos + 24])
                if fmt not in (1, 0xFFFE) or bits != 16 or channels != 1:
                    raise WavFormatError(f"WAV must be 16-bit PCM mono (got format {fmt}, "
                                         f"{bits}-bit, {channels} channel(s))")
                self.rate = rate
            pos += 8 + size + size % 2
        return None


class SniffedWav:
    """A WAV when the stream starts with RIFF, else raw s16le at `fallback_rate` (servers
    whose streamed header depends on the version)."""

    def __init__(self, fallback_rate: int) -> None:
        self._fallback_rate = fallback_rate
        self._head = b""
        self._decoder = None
        self.rate: int | None = None

    def feed(self, data: bytes) -> np.ndarray:
        if self._decoder is None:
            self._head += data
            if len(self._head) < 4:
                return np.zeros(0, np.float32)
            data, self._head = self._head, b""
            if data.startswith(b"RIFF"):
                self._decoder = WavStreamDecoder()
            else:
                self._decoder, self.rate = S16Decoder(), self._fallback_rate
        pcm = self._decoder.feed(data)
        if isinstance(self._decoder, WavStreamDecoder):
            self.rate = self._decoder.rate
        return pcm
