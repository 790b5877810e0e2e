"""Local stand-ins for voice-cloning TTS servers: each speaks its server's HTTP API (request
shape, streamed response format) and records what it was sent.

The audio is real speech: the request's text is spoken by a `speak(text) -> (pcm, rate)`
callable (Piper in the tests), resampled to the server's rate and streamed in `chunk_ms`
pieces. Each request takes the next behaviour from `behaviours` (the last one repeats):
  ("ok",)                 the whole sentence, streamed
  ("slow_first", s)       waits s seconds before the first byte
  ("stall_after", n)      n chunks, then the stream hangs
  ("die_after", n)        n chunks, then the connection is dropped mid-stream
  ("status", code)        an HTTP error with the server's error body
`first_byte_delay_s` is a fixed delay before every answer (the benchmark's stand-in latency).
"""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import time
import wave
from typing import ClassVar

import numpy as np
from aiohttp import web

from broadcaster.tts.levels import resample_to_broadcast
from tests.support.aio import serve_app


def speak_with(engine):
    """A stand-in's voice from a local engine (Piper): text -> (float32 pcm, rate)."""
    def speak(text: str):
        out = engine.synthesize(text)
        return out.pcm, out.rate
    return speak


def speak_espeak(voice: str):
    """A stand-in's voice from espeak-ng (e.g. "cmn": Mandarin, which no offline engine of
    the broadcaster speaks yet): text -> (float32 pcm, rate)."""
    from tests.support.data.speech import espeak

    def speak(text: str):
        data, rate = espeak(text, voice)
        return data.astype(np.float32) / 32768, rate
    return speak


def s16le(pcm: np.ndarray) -> bytes:
    return (np.clip(pcm, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def wave_module_header(rate: int) -> bytes:
    """The header Python's `wave` writes for a 16-bit mono file of no frames (sizes 36 and 0),
    which Fish Speech's wav_chunk_header() sends ahead of a stream."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
    return buffer.getvalue()


def streamed_wav_header(rate: int) -> bytes:
    """A 16-bit mono WAV header whose sizes are unknown (0xFFFFFFFF), as streaming servers send."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
            + fmt + b"data" + struct.pack("<I", 0xFFFFFFFF))


class StreamingTTSStandIn:
    """Base: a subclass adds its routes (add_routes) and parses its request into the text to
    speak, then calls self.answer(). `requests` records each request as the subclass saw it.
    serve() runs it on a loopback port (a context manager yielding the base URL)."""

    def __init__(self, speak, behaviours=(("ok",),), rate: int = 24_000, chunk_ms: int = 100,
                 chunk_delay_s: float = 0.0, first_byte_delay_s: float = 0.0) -> None:
        self._speak = speak
        self.behaviours = list(behaviours)
        self.rate = rate
        self.chunk_ms = chunk_ms
        self.chunk_delay_s = chunk_delay_s
        self.first_byte_delay_s = first_byte_delay_s
        self.requests: list[dict] = []
        self.first_byte_sent: list[float] = []   # monotonic time each answer's first audio is written
        self.audio_sent: list[bytearray] = []
        self.aborted = 0   # answers the client hung up on while they streamed   # per answer, the audio bytes written (header excluded)
        self._n = 0

    def app(self) -> web.Application:
        app = web.Application()
        self.add_routes(app)
        return app

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def serve(self):
        # stalled answers are cut at shutdown instead of being waited for
        return serve_app(self.app(), shutdown_timeout=0.2)

    def set_behaviour(self, *behaviour) -> None:
        """From now on every request gets this behaviour (e.g. ("status", 500))."""
        self.behaviours = [behaviour]
        self._n = 0

    def next_behaviour(self) -> tuple:
        behaviour = self.behaviours[min(self._n, len(self.behaviours) - 1)]
        self._n += 1
        return behaviour

    def error_response(self, code: int) -> web.Response:
        return web.json_response({"detail": f"test failure {code}"}, status=code)

    async def answer(self, request: web.Request, text: str, *, content_type: str,
                     header: bytes = b"") -> web.StreamResponse:
        """Stream `text` spoken as s16le at self.rate (after `header`), per the behaviour."""
        kind, *args = self.next_behaviour()
        if kind == "status":
            return self.error_response(args[0])
        pcm, rate = await asyncio.get_running_loop().run_in_executor(None, self._speak, text)
        data = s16le(resample_to_broadcast(pcm, rate, self.rate))
        step = self.rate * 2 * self.chunk_ms // 1000
        chunks = [data[i:i + step] for i in range(0, len(data), step)]
        sent = bytearray()
        self.audio_sent.append(sent)
        resp = web.StreamResponse(headers={"Content-Type": content_type})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            await asyncio.sleep(self.first_byte_delay_s + (args[0] if kind == "slow_first" else 0))
            for i, chunk in enumerate(chunks):
                if kind in ("stall_after", "die_after") and i == args[0]:
                    if kind == "die_after":
                        request.transport.close()
                        return resp
                    await asyncio.sleep(3600)
                if i == 0:
                    self.first_byte_sent.append(time.monotonic())
                await resp.write(header + chunk if i == 0 else chunk)
                sent += chunk
                if self.chunk_delay_s:
                    await asyncio.sleep(self.chunk_delay_s)
            await resp.write_eof()
        except ConnectionResetError:
            self.aborted += 1
        except asyncio.CancelledError:
            pass
        return resp


class OpenAISpeechStandIn(StreamingTTSStandIn):
    """`POST /v1/audio/speech` as in OpenAI's API: JSON {model, input, voice, response_format,
    speed}; "pcm" streams raw s16le mono at 24 kHz, "wav" a streamed WAV. Errors come in
    OpenAI's {"error": {...}} shape."""

    api_prefix = "/v1"   # what an engine's url adds to the server's address

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/audio/speech", self._speech)

    def error_response(self, code: int) -> web.Response:
        return web.json_response({"error": {"message": f"test failure {code}", "type": "server_error",
                                            "param": None, "code": None}}, status=code)

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"body": body, "headers": dict(request.headers), "t": time.monotonic()})
        fmt = body.get("response_format", "mp3")
        if fmt == "pcm":
            return await self.answer(request, body["input"], content_type="audio/pcm")
        if fmt == "wav":
            return await self.answer(request, body["input"], content_type="audio/wav",
                                     header=streamed_wav_header(self.rate))
        return web.json_response({"error": {"message": f"stand-in serves pcm and wav, not {fmt}",
                                            "type": "invalid_request_error", "param": "response_format",
                                            "code": None}}, status=400)


# engine name (as in a scene's tts: list) -> its stand-in
STANDINS = {"openai_speech": OpenAISpeechStandIn}


class FishSpeechStandIn(StreamingTTSStandIn):
    """Fish Speech's `POST /v1/tts` (fish-speech 0.1.0 tools/server): a msgpack or JSON
    ServeTTSRequest; streaming only with format "wav", answered as int16 mono segments at the
    decoder's rate (44.1 kHz). `wav_header` sends the WAV header first (as releases whose
    header reaches the client do); without it the segments come bare, as 0.1.0 sends them.
    A reference's audio arrives as bytes (msgpack) or base64 text (JSON) and is recorded
    decoded."""

    api_prefix = ""

    def __init__(self, speak, wav_header: bool = False, **kw) -> None:
        kw.setdefault("rate", 44_100)
        super().__init__(speak, **kw)
        self.wav_header = wav_header

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/tts", self._tts)

    def error_response(self, code: int) -> web.Response:
        return web.Response(status=code, text=f"test failure {code}")

    async def _tts(self, request: web.Request) -> web.StreamResponse:
        if request.content_type == "application/json":
            body = await request.json()
        else:
            return web.Response(status=415, text="stand-in reads application/json bodies")
        for ref in body.get("references", []):
            if isinstance(ref.get("audio"), str) and len(ref["audio"]) > 255:
                ref["audio"] = base64.b64decode(ref["audio"])
        self.requests.append({"body": body, "headers": dict(request.headers), "t": time.monotonic()})
        if body.get("streaming") and body.get("format") != "wav":
            return web.Response(status=400, text="Streaming only supports WAV format")
        header = wave_module_header(self.rate) if self.wav_header else b""
        return await self.answer(request, body["text"], content_type="audio/wav", header=header)


STANDINS["fish_speech"] = FishSpeechStandIn


class GptSovitsStandIn(StreamingTTSStandIn):
    """GPT-SoVITS api_v2 (`POST /tts` JSON TTS_Request, GET /set_gpt_weights and
    /set_sovits_weights?weights_path=). With streaming_mode and media_type "wav": the `wave`
    header (data size 0), then raw int16 mono at the model's rate (32 kHz). Missing required
    fields answer 400 with {"message": ...} as api_v2's check_params does. `weights` records
    the voice switches in order."""

    api_prefix = ""

    def __init__(self, speak, **kw) -> None:
        kw.setdefault("rate", 32_000)
        super().__init__(speak, **kw)
        self.weights: list[tuple[str, str]] = []

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/tts", self._tts)
        app.router.add_get("/set_gpt_weights", self._weights)
        app.router.add_get("/set_sovits_weights", self._weights)

    def error_response(self, code: int) -> web.Response:
        return web.json_response({"message": "tts failed", "Exception": f"test failure {code}"},
                                 status=code)

    async def _weights(self, request: web.Request) -> web.Response:
        path = request.query.get("weights_path")
        if not path:
            return web.json_response({"message": "weight path is required"}, status=400)
        self.weights.append((request.path.lstrip("/"), path))
        return web.json_response({"message": "success"})

    async def _tts(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"body": body, "headers": dict(request.headers), "t": time.monotonic()})
        for field in ("ref_audio_path", "text", "text_lang", "prompt_lang"):
            if not body.get(field):
                return web.json_response({"message": f"{field} is required"}, status=400)
        if not body.get("streaming_mode") or body.get("media_type", "wav") != "wav":
            return web.json_response({"message": "stand-in streams wav only"}, status=400)
        return await self.answer(request, body["text"], content_type="audio/wav",
                                 header=wave_module_header(self.rate))


STANDINS["gpt_sovits"] = GptSovitsStandIn


class CosyVoiceStandIn(StreamingTTSStandIn):
    """CosyVoice's FastAPI server (runtime/python/fastapi/server.py at commit 1cfc5dd0): GET
    routes taking form fields (a multipart body), /inference_sft (tts_text, spk_id),
    /inference_zero_shot (tts_text, prompt_text, prompt_wav file), /inference_cross_lingual
    (tts_text, prompt_wav file), answered with raw int16 mono at 22050 Hz. A POST is refused
    with 405, as that server does. Uploaded files are recorded as (filename, bytes)."""

    api_prefix = ""
    FIELDS: ClassVar[dict] = {"sft": ("tts_text", "spk_id"),
                              "zero_shot": ("tts_text", "prompt_text", "prompt_wav"),
                              "cross_lingual": ("tts_text", "prompt_wav")}

    def __init__(self, speak, **kw) -> None:
        kw.setdefault("rate", 22_050)
        super().__init__(speak, **kw)

    def add_routes(self, app: web.Application) -> None:
        for mode in self.FIELDS:
            app.router.add_get(f"/inference_{mode}", self._inference, allow_head=False)

    async def _inference(self, request: web.Request) -> web.StreamResponse:
        mode = request.path.removeprefix("/inference_")
        body = {}
        reader = await request.multipart()      # a GET's form body (request.post() reads POSTs only)
        async for part in reader:
            data = await part.read()
            body[part.name] = (part.filename, bytes(data)) if part.filename else data.decode()
        self.requests.append({"mode": mode, "body": body, "headers": dict(request.headers),
                              "t": time.monotonic()})
        missing = [f for f in self.FIELDS[mode] if f not in body]
        if missing:
            return web.json_response({"detail": [{"loc": ["body", f], "msg": "field required"}
                                                 for f in missing]}, status=422)
        return await self.answer(request, body["tts_text"], content_type="application/octet-stream")


STANDINS["cosyvoice"] = CosyVoiceStandIn
