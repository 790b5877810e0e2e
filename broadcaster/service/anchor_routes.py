"""POST /anchor/clip {"name"}: play one of the anchor's action clips (`clips:` in the scene).

The anchor is looked up at each request, so a scene switched by a reload is the one asked.
Access (Host, Origin, JSON body, token) is checked by the control endpoint's middleware.
"""

from __future__ import annotations

from typing import Callable

from aiohttp import web

from broadcaster.avatar.renderer import ActionClips
from broadcaster.service.replies import json_field, json_refusal

ANCHOR_KEY = web.AppKey("broadcaster_anchor", Callable)


def add_anchor_routes(app: web.Application, current_anchor: Callable[[], object]) -> None:
    """Call before the app starts (aiohttp freezes the router)."""
    app[ANCHOR_KEY] = current_anchor
    app.router.add_post("/anchor/clip", _play_clip)


async def _play_clip(request: web.Request) -> web.Response:
    anchor = request.app[ANCHOR_KEY]()
    names = anchor.clip_names() if isinstance(anchor, ActionClips) else []
    if not names:
        raise json_refusal(web.HTTPNotFound, "no_clips",
                           "the anchor on air has no action clips (anchor.clips in the scene)")
    name = await json_field(request, "name", str, f"'name' must be one of {names}")
    if not anchor.play(name):
        raise json_refusal(web.HTTPBadRequest, "unknown_clip", f"'name' must be one of {names}")
    return web.json_response({"status": "queued", "clip": name}, status=202)
