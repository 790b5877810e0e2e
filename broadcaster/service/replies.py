"""The control endpoint's one error shape: {"error": reason, "detail": text} with a status,
as a response to return or an aiohttp HTTP error to raise."""

from __future__ import annotations

import json

from aiohttp import web


def error_text(reason: str, detail: str) -> str:
    return json.dumps({"error": reason, "detail": detail})


def json_error(status: int, reason: str, detail: str) -> web.Response:
    return web.Response(text=error_text(reason, detail), status=status, content_type="application/json")


def json_refusal(http_error: type, reason: str, detail: str) -> web.HTTPException:
    """An aiohttp HTTP error (web.HTTPBadRequest, ...) to raise, with the same JSON body."""
    return http_error(text=error_text(reason, detail), content_type="application/json")


async def json_field(request: web.Request, key: str, kind: type, problem: str):
    """The body's `key` when it is a (non-empty) `kind`; else a 400 refusal saying `problem`."""
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise json_refusal(web.HTTPBadRequest, "bad_json", "the body must be a JSON object")
    value = data.get(key)
    if not isinstance(value, kind) or (kind is str and not value):
        raise json_refusal(web.HTTPBadRequest, "bad_field", problem)
    return value
