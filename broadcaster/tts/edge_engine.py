"""Online Microsoft Edge read-aloud voices via the edge-tts library; MP3 decoded with PyAV.

Called from a worker thread: each call runs its own short asyncio loop.
"""
from __future__ import annotations

import asyncio
import io
import logging

import numpy as np

from broadcaster.tts.engine import Synthesized, TTSError
from broadcaster.tts.levels import decode_mono

log = logging.getLogger(__name__)


def decode_mp3(data: bytes) -> tuple[np.ndarray, int]:
    """Decode MP3 bytes to float32 mono at their own rate."""
    try:
        return decode_mono(io.BytesIO(data), format="mp3")
    except ValueError as exc:
        raise TTSError(f"edge-tts returned audio that does not decode as MP3: {exc}") from exc


class EdgeTTSEngine:
    """edge-tts by voice name, e.g. 'zh-CN-XiaoxiaoNeural'."""

    name = "edge-tts"

    def __init__(self, voice: str, *, rate: str = "+0%", volume: str = "+0%", pitch: str = "+0Hz",
                 connect_timeout_s: int = 5, receive_timeout_s: int = 15) -> None:
        import edge_tts  # noqa: F401  (fail early if missing)

        if not voice:
            raise TTSError("edge-tts: voice name is empty")
        self.voice = voice
        self._kw = dict(rate=rate, volume=volume, pitch=pitch,
                        connect_timeout=connect_timeout_s, receive_timeout=receive_timeout_s)

    async def _fetch(self, text: str) -> bytes:
        import edge_tts

        comm = edge_tts.Communicate(text, self.voice, **self._kw)
        audio = bytearray()
        async for chunk in comm.stream():
            if chunk["type"] == "audio":
                audio += chunk["data"]
        return bytes(audio)

    def synthesize(self, text: str) -> Synthesized:
        try:
            data = asyncio.run(self._fetch(text))
        except Exception as exc:  # aiohttp / edge_tts exceptions: unreachable, protocol, 403
            raise TTSError(f"edge-tts voice {self.voice} failed: {type(exc).__name__}: {exc}") from exc
        pcm, rate = decode_mp3(data)
        return Synthesized(pcm=pcm, rate=rate, engine=self.name)

    def close(self) -> None:
        pass
