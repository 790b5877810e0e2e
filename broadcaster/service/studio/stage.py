"""The studio stage: routes under /studio on the control endpoint, and what they read.

    GET  /studio/                 the page (static/index.html, studio.js, studio.css)
    GET  /studio/state            on air, ingest, bitrate/fps history, link events, captions,
                                  chat queue and recent decisions, turns, scenes, mic
    GET  /studio/preview.jpg      the program picture (service.preview.PreviewFeed)
    POST /studio/chat/remove      {"id": "..."}: skip a waiting chat message
    POST /studio/scene            {"name": "..."}: switch scene (the SIGHUP reload path)
    POST /studio/mic              {"muted": true|false}: mute the host's microphone
Saying a line, interrupting and sending chat use the existing /say, /interrupt and /chat.
The stage reads other stages through their read methods only (ChatIntake.queue/recent,
TurnLog.recent, ServiceRuntime.snapshot/link_events, HostMic.set_muted).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from pathlib import Path

from aiohttp import web

from broadcaster.redact import redact_url
from broadcaster.scene import list_scenes
from broadcaster.service.preview import PreviewFeed
from broadcaster.service.replies import json_error, json_refusal
from broadcaster.service.replies import json_field as _json_field
from broadcaster.stages import Tick

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
FILES = {"index.html": "text/html", "studio.js": "text/javascript", "studio.css": "text/css"}
HISTORY_S = 300                 # the plots show the last five minutes, one sample a second
PREVIEW_WAIT_S = 1.0            # a first request waits this long for a frame


class Studio:
    name = "studio"

    def __init__(self, station, preview: PreviewFeed | None = None):
        self.station = station
        self.preview = preview or PreviewFeed()
        self._history: deque[dict] = deque(maxlen=HISTORY_S)
        self._sampled_at = float("-inf")
        self.caption: str | None = None
        station.events.tick.subscribe(self._on_tick)
        router = station.control.app.router
        router.add_get("/studio", self._redirect)
        router.add_get("/studio/", self._file)
        router.add_get("/studio/{name:(index.html|studio.js|studio.css)}", self._file)
        router.add_get("/studio/state", self._state)
        router.add_get("/studio/preview.jpg", self._preview)
        router.add_post("/studio/chat/remove", self._remove_chat)
        router.add_post("/studio/scene", self._switch_scene)
        router.add_post("/studio/mic", self._mute_mic)
        station.add_stage(self)

    def start(self) -> None:
        control = self.station.control
        if control.serve_http:
            log.info("studio page: http://%s:%d/studio/", control.host, control.port)

    def stop(self) -> None:
        """Nothing of its own to stop: the routes go with the control endpoint."""

    # -- media thread ------------------------------------------------------------------
    def _on_tick(self, tick: Tick) -> None:
        self.preview.on_tick(tick)
        self.caption = tick.chunk.caption
        now = time.monotonic()
        if now - self._sampled_at >= 1.0:
            self._sampled_at = now
            snap = self.station.runtime.snapshot()
            metrics = self.station.runtime.metrics
            self._history.append({
                "at": now, "on_air": snap.on_air,
                "kbps": None if snap.bitrate_bps is None else round(snap.bitrate_bps / 1000),
                "send_kbps": None if metrics.last_send_rate_bps is None
                else round(metrics.last_send_rate_bps / 1000),
                "fps": None if snap.fps is None else round(snap.fps, 1)})

    # -- reads -------------------------------------------------------------------------
    def state(self) -> dict:
        """Everything the page shows, as JSON-ready values; times as seconds ago."""
        now = time.monotonic()
        station = self.station
        snap = station.runtime.snapshot()
        live, mic = station.live, station.host_mic
        links = station.runtime.link_events()
        return {
            "status": {"on_air": snap.on_air, "ingest": redact_url(snap.ingest),
                       "bitrate_kbps": None if snap.bitrate_bps is None else round(snap.bitrate_bps / 1000),
                       "fps": None if snap.fps is None else round(snap.fps, 1),
                       "queue_ms": None if snap.queue_delay_s is None else round(snap.queue_delay_s * 1000),
                       "speaker": snap.speaker, "degraded": list(snap.degraded),
                       "frame": station.broadcast.frame_index},
            "history": [_aged(s, now) for s in list(self._history)],
            "link": [_aged(e, now) for e in links[-20:]],
            "reconnects": sum(1 for e in links if e["kind"] == "dropped"),
            "caption": self.caption,
            "chat": None if live is None else {
                "http": live.chat_http, "queue": live.intake.queue(),
                "recent": [_aged(e, now) for e in live.intake.recent()[-20:]]},
            "turns": None if live is None else live.turns.recent(10),
            "current": None if live is None or live.conversation.current is None else {
                "kind": live.conversation.current.kind, "user": live.conversation.current.user,
                "text": live.conversation.current.text[:300]},
            "scene": {"current": station.scene_name(),
                      "available": [p.stem for p in list_scenes(station.config.scenes_dir)]},
            "mic": None if mic is None else {"state": mic.state, "muted": mic.muted},
        }

    # -- HTTP --------------------------------------------------------------------------
    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.rel_url.with_path("/studio/").with_query(request.rel_url.query))

    async def _file(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name", "index.html")
        return web.FileResponse(STATIC / name, headers={"Content-Type": FILES[name],
                                                        "Cache-Control": "no-cache"})

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _preview(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        self.preview.watch()
        deadline = time.monotonic() + PREVIEW_WAIT_S
        picture = await loop.run_in_executor(None, self.preview.jpeg)
        while picture is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            picture = await loop.run_in_executor(None, self.preview.jpeg)
        if picture is None:
            return json_error(503, "no_picture", "no frame yet; the broadcast is starting")
        index, body = picture
        return web.Response(body=body, content_type="image/jpeg",
                            headers={"Cache-Control": "no-store", "X-Frame-Index": str(index)})

    async def _remove_chat(self, request: web.Request) -> web.Response:
        live = self.station.live
        if live is None:
            raise json_refusal(web.HTTPNotFound, "no_chat", "this broadcast runs without the live side")
        message_id = await _json_field(request, "id", str, "'id' (a queued message's id) is required")
        if live.intake.remove(message_id) is None:
            raise json_refusal(web.HTTPNotFound, "not_queued", "no waiting message has that id (picked or expired?)")
        return web.json_response({"status": "removed", "id": message_id})

    async def _switch_scene(self, request: web.Request) -> web.Response:
        available = [p.stem for p in list_scenes(self.station.config.scenes_dir)]
        name = await _json_field(request, "name", str, f"'name' must be one of {available}")
        if name not in available:
            raise json_refusal(web.HTTPBadRequest, "unknown_scene", f"'name' must be one of {available}")
        self.station.switch_scene(name)
        return web.json_response({"status": "switching", "scene": name}, status=202)

    async def _mute_mic(self, request: web.Request) -> web.Response:
        mic = self.station.host_mic
        if mic is None:
            raise json_refusal(web.HTTPNotFound, "no_mic", "the host microphone is off (mic.enabled or --mic)")
        muted = await _json_field(request, "muted", bool, "'muted' must be true or false")
        mic.set_muted(muted)
        return web.json_response({"status": "muted" if muted else "open"})


def _aged(entry: dict, now: float) -> dict:
    """entry with its monotonic `at` replaced by `ago` (seconds before now)."""
    aged = {k: v for k, v in entry.items() if k != "at"}
    aged["ago"] = round(now - entry["at"], 1)
    return aged

