"""The control endpoint's one error shape: {"error": reason, "detail": text} with a status."""

from __future__ import annotations

from aiohttp import web


def json_error(status: int, reason: str, detail: str) -> web.Response:
    return web.json_response({"error": reason, "detail": detail}, status=status)
