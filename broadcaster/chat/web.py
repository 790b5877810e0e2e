"""Chat through the local control endpoint: `POST /chat` and the `/chat/ws` WebSocket.

Both take JSON {"user": str, "text": str, optional "moderator", "member", "paid_amount",
"currency", "platform", "request_id"}. POST answers 202 {"status": "queued", "id"} or a 4xx
{"error": reason}. The WebSocket answers each message with {"type": "accepted"|"refused", ...}
and also carries whatever the live side broadcasts via broadcast(app, event): each
"question" taken up and the anchor's "answer". The endpoint listens on 127.0.0.1, so flags
are trusted as given.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from typing import Awaitable, Callable, Union

from aiohttp import WSMsgType, web

from broadcaster.chat.message import ChatMessage
from broadcaster.chat.selection import Accepted, Decision, Refused
from broadcaster.schema import is_number

log = logging.getLogger(__name__)

OnMessage = Callable[[ChatMessage], Union[Decision, Awaitable[Decision]]]
MAX_BODY_BYTES = 16 * 1024
# HTTP status for each refusal reason (selection reasons plus request-shape ones).
STATUS_FOR_REASON = {
    "bad_json": 400, "bad_field": 400, "missing_field": 400, "empty": 400,
    "too_long": 413, "body_too_large": 413,
    "blocked_user": 403, "blocked_word": 403,
    "duplicate": 409, "rate_limited": 429, "user_backlog": 429, "queue_full": 503,
}


class RequestError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def message_from_json(data: object, default_platform: str = "http") -> ChatMessage:
    """Validate a chat JSON object; RequestError names the offending field."""
    if not isinstance(data, dict):
        raise RequestError("bad_json", "expected a JSON object")
    for key in ("user", "text"):
        if key not in data:
            raise RequestError("missing_field", f"missing field '{key}'")
        if not isinstance(data[key], str):
            raise RequestError("bad_field", f"field '{key}' must be a string")
    flags: dict = {}
    for key in ("moderator", "member"):
        if key in data:
            if not isinstance(data[key], bool):
                raise RequestError("bad_field", f"field '{key}' must be true or false")
            flags[key] = data[key]
    if "paid_amount" in data:
        amount = data["paid_amount"]
        if not is_number(amount) or amount < 0:
            raise RequestError("bad_field", "field 'paid_amount' must be a number >= 0")
        flags["paid_amount"] = float(amount)
    for key in ("currency", "platform"):
        if key in data:
            if not isinstance(data[key], str) or len(data[key]) > 16:
                raise RequestError("bad_field", f"field '{key}' must be a short string")
            flags[key] = data[key]
    flags.setdefault("platform", default_platform)
    return ChatMessage(user=data["user"], text=data["text"], time=time.monotonic(), **flags)


class ChatHub:
    """The set of open /chat/ws sockets; broadcast() never blocks on a slow client."""

    def __init__(self, queue_size: int = 64) -> None:
        self.queue_size = queue_size
        self._clients: dict[web.WebSocketResponse, asyncio.Queue] = {}
        self.counters = {"events": 0, "dropped_slow_client": 0}

    @property
    def clients(self) -> int:
        return len(self._clients)

    def broadcast(self, event: dict) -> None:
        """Queue an event for every client (call from the event loop's thread)."""
        self.counters["events"] += 1
        for ws, queue in list(self._clients.items()):
            if queue.full():
                self.counters["dropped_slow_client"] += 1
                self._clients.pop(ws, None)
                asyncio.ensure_future(ws.close(code=1008, message=b"too slow"))
                continue
            queue.put_nowait(event)

    def _attach(self, ws: web.WebSocketResponse) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(self.queue_size)
        self._clients[ws] = queue
        return queue

    def _detach(self, ws: web.WebSocketResponse) -> None:
        self._clients.pop(ws, None)

    async def close(self) -> None:
        for ws in list(self._clients):
            await ws.close(code=1001, message=b"server shutdown")
        self._clients.clear()


CHAT_HUB = web.AppKey("chat_hub", ChatHub)


def chat_hub(app: web.Application) -> ChatHub:
    return app[CHAT_HUB]


def broadcast(app: web.Application, event: dict) -> None:
    """Push an event (e.g. {"type": "answer", "user": ..., "text": ...}) to every WS client."""
    app[CHAT_HUB].broadcast(event)


async def _decide(on_message: OnMessage, msg: ChatMessage) -> Decision:
    decision = on_message(msg)
    if inspect.isawaitable(decision):
        decision = await decision
    if not isinstance(decision, (Accepted, Refused)):
        raise TypeError(f"on_message must return Accepted or Refused, got {decision!r}")
    return decision


def add_chat_routes(app: web.Application, on_message: OnMessage, *,
                    ws_queue_size: int = 64) -> None:
    """Add POST /chat and GET /chat/ws to app. on_message(msg) -> Accepted | Refused."""
    hub = ChatHub(ws_queue_size)
    app[CHAT_HUB] = hub

    async def post_chat(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _refused("body_too_large", f"body over {MAX_BODY_BYTES} bytes")
        raw = await request.content.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            return _refused("body_too_large", f"body over {MAX_BODY_BYTES} bytes")
        try:
            msg = message_from_json(_loads(raw))
        except RequestError as exc:
            return _refused(exc.reason, exc.detail)
        decision = await _decide(on_message, msg)
        if isinstance(decision, Refused):
            return _refused(decision.reason, decision.reason.replace("_", " "))
        return web.json_response({"status": "queued", "id": decision.message.id}, status=202)

    async def chat_ws(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_BODY_BYTES)
        await ws.prepare(request)
        queue = hub._attach(ws)
        sender = asyncio.create_task(_pump(ws, queue))
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    if frame.type == WSMsgType.ERROR:
                        break
                    continue
                await queue.put(await _ws_decide(on_message, frame.data))
        finally:
            hub._detach(ws)
            sender.cancel()
        return ws

    app.router.add_post("/chat", post_chat)
    app.router.add_get("/chat/ws", chat_ws)
    app.on_shutdown.append(lambda _app: hub.close())


def _loads(raw: bytes) -> object:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError("bad_json", f"body is not JSON: {exc}") from None


def _refused(reason: str, detail: str) -> web.Response:
    return web.json_response({"error": reason, "detail": detail},
                             status=STATUS_FOR_REASON.get(reason, 400))


async def _ws_decide(on_message: OnMessage, text: str) -> dict:
    request_id = None
    try:
        data = _loads(text.encode("utf-8", errors="replace"))
        if isinstance(data, dict):
            request_id = data.get("request_id")
        msg = message_from_json(data, default_platform="ws")
    except RequestError as exc:
        return {"type": "refused", "error": exc.reason, "detail": exc.detail,
                "request_id": request_id}
    decision = await _decide(on_message, msg)
    if isinstance(decision, Refused):
        return {"type": "refused", "error": decision.reason, "request_id": request_id}
    return {"type": "accepted", "id": decision.message.id, "request_id": request_id,
            "message": decision.message.to_json()}


async def _pump(ws: web.WebSocketResponse, queue: asyncio.Queue) -> None:
    try:
        while True:
            event = await queue.get()
            if event is None:
                return
            await ws.send_json(event)
    except (ConnectionError, RuntimeError, asyncio.CancelledError):
        pass
