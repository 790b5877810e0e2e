"""A real local HTTP server speaking the OpenAI chat-completions API with SSE streaming.

The real `openai` client talks to it through base_url. Each request takes the next behaviour
from `behaviours` (the last one repeats):
  ("stream", text)             chunks of a few characters, `data: {chunk}\\n\\n` ... `data: [DONE]`
  ("slow_first", delay, text)  waits `delay` s before the first chunk
  ("stall", text)              streams the first chunk then hangs (total-timeout case)
  ("status", code)             an HTTP error in OpenAI's JSON error shape
  ("malformed", text)          one good chunk, then a data line that is not JSON
Request bodies and headers are recorded in `requests`.
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from tests.support.aio import AppServer


def _chunk(n: int, model: str, delta: dict, finish=None) -> bytes:
    body = {"id": f"chatcmpl-test{n}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model, "system_fingerprint": "fp_test",
            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": finish}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def split_text(text: str, size: int = 6) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


class FakeOpenAI(AppServer):
    prefix = "/v1"
    runner_options = {"shutdown_timeout": 0.5}

    def __init__(self, behaviours=(("stream", "Hello there. Nice to see you!"),),
                 chunk_delay: float = 0.0) -> None:
        super().__init__()
        self.behaviours = list(behaviours)
        self.chunk_delay = chunk_delay
        self.requests: list[dict] = []
        self._n = 0

    def set_behaviour(self, *behaviour) -> None:
        """From now on every request gets this behaviour (e.g. ("slow_first", 4, text))."""
        self.behaviours = [behaviour]
        self._n = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._completions)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"body": body, "headers": dict(request.headers),
                              "t": time.monotonic()})
        behaviour = self.behaviours[min(self._n, len(self.behaviours) - 1)]
        self._n += 1
        kind, args = behaviour[0], behaviour[1:]
        model = body.get("model", "test-model")
        if kind == "status":
            code = args[0]
            return web.json_response({"error": {"message": f"test failure {code}",
                                                "type": "server_error", "param": None,
                                                "code": None}}, status=code)
        if not body.get("stream"):
            text = args[-1]
            return web.json_response({
                "id": "chatcmpl-x", "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant",
                                                         "content": text}}]})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
        await resp.prepare(request)
        try:
            if kind == "slow_first":
                await asyncio.sleep(args[0])
            text = args[-1]
            pieces = split_text(text)
            await resp.write(_chunk(self._n, model, {"role": "assistant", "content": ""}))
            for i, piece in enumerate(pieces):
                await resp.write(_chunk(self._n, model, {"content": piece}))
                if kind == "stall":
                    await asyncio.sleep(3600)
                if kind == "malformed" and i == 0:
                    await resp.write(b'data: {"id": "chatcmpl-bad", "choices": [\n\n')
                    return resp
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
            await resp.write(_chunk(self._n, model, {}, finish="stop"))
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp
