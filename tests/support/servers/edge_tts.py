"""A loopback server speaking edge-tts's websocket wire format (the real service is online).

Protocol as in edge_tts/communicate.py: the client sends a `Path:speech.config` text message and a
`Path:ssml` text message; the service answers `turn.start`, `audio.metadata` (JSON), binary
`Path:audio` messages (2-byte big-endian header length, headers, MP3 data, Content-Type
audio/mpeg), a final binary audio message with no Content-Type and no data, then `turn.end`.
The audio is real speech: the SSML text is spoken by Piper and encoded as 24 kHz mono MP3.
"""
from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape

import av
import numpy as np
from aiohttp import WSMsgType, web

from broadcaster.tts.levels import resample_to_broadcast
from tests.support.aio import LoopThread, start_site


def encode_mp3_24k(pcm: np.ndarray, rate: int) -> bytes:
    pcm24 = resample_to_broadcast(pcm, rate, 24_000)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=24_000, layout="mono")
        stream.bit_rate = 48_000
        frame = av.AudioFrame.from_ndarray(pcm24.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = 24_000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def _text_msg(request_id: str, path: str, body: str, ctype: str = "application/json; charset=utf-8") -> str:
    return f"X-RequestId:{request_id}\r\nContent-Type:{ctype}\r\nPath:{path}\r\n\r\n{body}"


def _audio_msg(request_id: str, data: bytes, with_type: bool = True) -> bytes:
    headers = f"X-RequestId:{request_id}\r\n"
    if with_type:
        headers += "Content-Type:audio/mpeg\r\n"
    headers += "X-StreamId:ABCDEF\r\nPath:audio\r\n"
    hb = headers.encode()
    return len(hb).to_bytes(2, "big") + hb + data


class EdgeWireServer:
    """Runs on a LoopThread on 127.0.0.1; `requests` records voice, text, query, the SSML
    body and its xml:lang."""

    def __init__(self, speak) -> None:
        self._speak = speak  # text -> (pcm float32, rate)
        self.requests: list[dict] = []
        self.port = 0
        self._loop: LoopThread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def wss_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/consumer/speech/synthesize/readaloud/edge/v1?TrustedClientToken=test"

    async def _handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        got_config = False
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            head, _, body = msg.data.partition("\r\n\r\n")
            headers = dict(line.split(":", 1) for line in head.split("\r\n"))
            if headers.get("Path") == "speech.config":
                got_config = "outputFormat" in body
                continue
            if headers.get("Path") != "ssml" or not got_config:
                await ws.close()
                break
            rid = headers["X-RequestId"]
            voice = re.search(r"<voice name='([^']+)'>", body).group(1)
            text = unescape(re.sub(r"<[^>]+>", "", body.split("<prosody", 1)[1].split(">", 1)[1])).strip()
            lang = re.search(r"xml:lang='([^']+)'", body)
            self.requests.append({"voice": voice, "text": text, "query": dict(request.query),
                                  "ssml": body, "lang": lang.group(1) if lang else None})
            pcm, rate = await asyncio.get_running_loop().run_in_executor(None, self._speak, text)
            mp3 = encode_mp3_24k(pcm, rate)
            await ws.send_str(_text_msg(rid, "turn.start", '{"context":{"serviceTag":"test"}}'))
            meta = {"Metadata": [{"Type": "SentenceBoundary", "Data": {
                "Offset": 1000000, "Duration": int(len(pcm) / rate * 1e7),
                "text": {"Text": text, "Length": len(text), "BoundaryType": "SentenceBoundary"}}}]}
            await ws.send_str(_text_msg(rid, "audio.metadata", json.dumps(meta)))
            for i in range(0, len(mp3), 4096):
                await ws.send_bytes(_audio_msg(rid, mp3[i:i + 4096]))
            await ws.send_bytes(_audio_msg(rid, b"", with_type=False))
            await ws.send_str(_text_msg(rid, "turn.end", "{}"))
        return ws

    def start(self) -> "EdgeWireServer":
        self._loop = LoopThread()
        self._loop.run(self._start())
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/consumer/speech/synthesize/readaloud/edge/v1", self._handler)
        self._runner, self.port = await start_site(app)

    def stop(self) -> None:
        if self._runner is not None:
            self._loop.run(self._runner.cleanup())
        self._loop.close()


@contextmanager
def edge_tts_served_by(engine, monkeypatch) -> Iterator[EdgeWireServer]:
    """An EdgeWireServer speaking with a local TTS engine, edge-tts pointed at it."""
    def speak(text):
        out = engine.synthesize(text)
        return out.pcm, out.rate

    server = EdgeWireServer(speak).start()
    import edge_tts.communicate
    monkeypatch.setattr(edge_tts.communicate, "WSS_URL", server.wss_url)
    try:
        yield server
    finally:
        server.stop()
