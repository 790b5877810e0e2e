"""The live side of a Station (a stage): the anchor's voice, the conversation and chat, on
the control loop.

    chat sources / POST /chat / WebSocket ─> ChatIntake (moderation, selection) ─┐
      gifts, follows (chat events) ─> ThanksQueue (the scene's thanks:) ──────────┤
    POST /say, scene script, host transcripts ─────────────────────────────────── Conversation
                                                       responder ─> SpeechStage ─> mixer
Off air (the ingest is down) no turn starts and the mixer holds the speech (offair.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from aiohttp import web

from broadcaster.chat.config import chat_settings_from_dict
from broadcaster.chat.intake import ChatIntake
from broadcaster.chat.sanitize import clean_text
from broadcaster.chat.selection import ChatSelector, Refused
from broadcaster.chat.stdin import StdinSource
from broadcaster.chat.web import add_chat_routes, broadcast
from broadcaster.dialogue.conversation import Conversation, TrackingSink, TurnLog
from broadcaster.dialogue.offair import OffAirHold
from broadcaster.dialogue.thanks import ThanksQueue, thanks_settings
from broadcaster.dialogue.turns import script_schedule
from broadcaster.errors import ConfigError
from broadcaster.render.overlay import ChatOverlay, overlay_spec
from broadcaster.reply.factory import make_responder
from broadcaster.scene import Scene
from broadcaster.service.replies import json_error as _error
from broadcaster.stages import Interrupt, LinesMuxed, Reload, Tick
from broadcaster.tts.settings import build_engine, voice_settings
from broadcaster.tts.stage import SpeechStage

log = logging.getLogger(__name__)
MAX_SAY_CHARS = 2000


@dataclass
class Persona:
    name: str = "Ava"
    description: str = ""
    rules: str = ""


def persona_of(scene: Scene) -> Persona:
    from broadcaster.schema import Section
    sec = Section(scene.features.get("persona"), scene.source, "persona")
    sec.allow_only(("name", "description", "rules"))
    return Persona(sec.text("name", "Ava"), sec.text("description", "", allow_empty=True),
                   sec.text("rules", "", allow_empty=True))


def build_responder(config, scene: Scene, override: str | None):
    settings = scene.features.get("responder") or config.features.get("responder") or {}
    persona = persona_of(scene)
    prompt = persona.description or f"You are {persona.name}, the host of this live stream."
    where = f"{scene.source}: responder" if scene.features.get("responder") else f"{config.source}: responder"
    try:
        return make_responder(settings, persona=prompt, rules=persona.rules, override=override, where=where)
    except ValueError as exc:
        raise ConfigError(where.split(": ")[0], "responder", str(exc).split(": ", 1)[-1]) from None


def chat_settings(config):
    """The config's chat: section built (sources, selection); ConfigError naming the key."""
    try:
        return chat_settings_from_dict(config.features.get("chat"))
    except ValueError as exc:
        key, _, message = str(exc).partition(": ")   # "chat.sources[1]: what is wrong"
        if not key.startswith("chat") or not message:
            key, message = "chat", str(exc)
        raise ConfigError(config.source, key, message) from None


def greeting_of(scene: Scene) -> str | None:
    """The scene's `greeting:` line (said once when a run starts from a terminal)."""
    text = scene.features.get("greeting")
    if text is None:
        return None
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(scene.source, "greeting", "must be non-empty text")
    if len(text) > MAX_SAY_CHARS:
        raise ConfigError(scene.source, "greeting", f"must be at most {MAX_SAY_CHARS} characters")
    return text.strip()


def validate_live(config, scene: Scene) -> None:
    """Check every live-side setting of config + scene (for `broadcaster check`): voice,
    responder, chat, script, overlay, persona. Raises ConfigError naming file and key."""
    voice_settings(config, scene)
    responder = build_responder(config, scene, None)
    asyncio.run(responder.close())
    chat_settings(config)
    script_schedule(scene.features.get("script"), scene.source)
    thanks_settings(scene.features.get("thanks"), scene.source)
    greeting_of(scene)
    if scene.features.get("chat_overlay"):
        overlay_spec(scene.features["chat_overlay"], scene.source, scene.canvas.width, scene.canvas.height)


class Live:
    """Owns the speech stage, responder, chat intake and conversation of one station."""

    name = "live"

    def __init__(self, station, responder_override: str | None = None, answer_chat: bool = True,
                 stdin_chat: bool = False, greet: bool = False):
        """stdin_chat: lines typed in the terminal are chat (unless a stdin source is
        configured already); greet: say the scene's `greeting` once on start."""
        self.station = station
        config, scene = station.config, station.broadcast.scene
        self.responder_override = responder_override
        self.tts = voice_settings(config, scene)
        self.responder = build_responder(config, scene, responder_override)
        chat = chat_settings(config)
        self.chat_http = chat.http
        self.stdin_chat = stdin_chat and not any(isinstance(s, StdinSource) for s in chat.sources)
        sources = chat.sources + ([StdinSource(user="you")] if self.stdin_chat else [])
        self.intake = ChatIntake(ChatSelector(chat.selection), sources)
        self.turns = TurnLog(on_complete=self._turn_complete)
        self.engine = build_engine(self.tts, count_bytes=station.runtime.metrics.tts_bytes)
        self.stage = SpeechStage(self.engine, TrackingSink(station.broadcast.mixer, self.turns),
                                 target_dbfs=self.tts.level_dbfs,
                                 first_fragment_words=self.tts.first_fragment_words or None)
        self.conversation = Conversation(
            self.stage, self.responder, station.broadcast.mixer,
            intake=self.intake if answer_chat else None,
            script=script_schedule(scene.features.get("script"), scene.source),
            thanks=_thanks_queue(scene), turns=self.turns,
            on_interrupt=lambda: station.events.interrupt.publish(Interrupt(time.monotonic())),
            on_turn_start=self._turn_start, on_turn_end=self._turn_end)
        self.overlay = self._make_overlay(scene)
        self.greeting = greeting_of(scene) if greet else None
        self._stop: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self._wire()

    # -- wiring ------------------------------------------------------------------------
    def _make_overlay(self, scene: Scene) -> ChatOverlay | None:
        data = scene.features.get("chat_overlay")
        if not data:
            return None
        return ChatOverlay(overlay_spec(data, scene.source, scene.canvas.width, scene.canvas.height))

    def _wire(self) -> None:
        station = self.station
        metrics = station.runtime.metrics
        station.events.tick.subscribe(self._on_tick)
        station.events.lines_muxed.subscribe(self._on_lines_muxed)
        station.events.reload.subscribe(self._on_reload)
        off_air = OffAirHold(station.broadcast.mixer)
        station.events.air.subscribe(off_air.on_air_state)
        self.conversation.add_floor_holder(off_air)

        def on_decision(msg, decision):
            metrics.chat_in(_label(msg.platform))
            if isinstance(decision, Refused):
                metrics.chat_dropped(decision.reason)
        self.intake.decision_listeners.append(on_decision)
        self.intake.event_listeners.append(
            lambda event: metrics.chat_event(_label(event.platform), event.kind, event.paid_amount, event.currency))
        self.intake.listeners.append(lambda msg: station.runtime.set_last_chat(msg.user, msg.text))
        if self.conversation.intake is not None:
            self.intake.event_listeners.append(self.conversation.thank)
        control = station.control
        if self.chat_http:
            add_chat_routes(control.app, self.intake.offer)
        control.app.router.add_post("/say", self._post_say)
        control.app.router.add_get("/turns", self._get_turns)
        control.app.router.add_post("/interrupt", self._post_interrupt)
        control.on_startup(self._run)
        station.add_stage(self)

    def start(self) -> None:
        """The conversation and chat run as tasks of the control loop, which started them
        when it came up; here the greeting is queued and the terminal told how to chat."""
        if self.greeting:
            self.conversation.say(self.greeting)
        if self.stdin_chat:
            log.info("type a line and press Enter: the anchor answers it on air "
                     "(\"@name text\" to speak as name)")

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self.conversation.run(self._stop), name="conversation"),
                       asyncio.create_task(self.intake.run(self._stop), name="chat-sources")]

    def stop(self) -> None:
        control = self.station.control
        if self._stop is not None and control is not None and control.loop.is_running():
            async def stop():
                self._stop.set()
                self.stage.interrupt(cut_sink=False)
                for task in self._tasks:
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
                await self.responder.close()
            try:
                control.call(stop(), timeout=5)
            except Exception as exc:  # noqa: BLE001 - shutting down
                log.debug("stopping the conversation: %s", exc)
        self.stage.close()
        self.engine.close()

    # -- events ------------------------------------------------------------------------
    def _on_tick(self, tick: Tick) -> None:
        for line_id in tick.chunk.started:
            self.turns.mark(line_id, "on_air", tick.mixed_at)

    def _on_lines_muxed(self, event: LinesMuxed) -> None:
        for line_id in event.lines:
            self.turns.mark(line_id, "muxed", event.at)

    def _turn_start(self, item) -> None:
        metrics = self.station.runtime.metrics
        if item.kind == "chat":
            metrics.chat_selected(_label(item.message.platform))
        if item.kind in ("chat", "host"):
            self.station.runtime.set_speaker(item.user)
            if self.overlay is not None:
                spec = self.overlay.spec
                self.station.broadcast.compositor.set_overlay("chat", self.overlay.add(item.user, item.text),
                                                              spec.x, spec.y)
            broadcast(self.station.control.app, {"type": "question", "kind": item.kind,
                                                 "user": item.user, "text": item.text})
        else:
            self.station.runtime.set_speaker("anchor")

    def _turn_end(self, item, report) -> None:
        self.station.runtime.set_speaker(None)
        broadcast(self.station.control.app, {"type": "answer", "kind": item.kind, "user": item.user,
                                             "text": report.spoken, "interrupted": report.interrupted})

    def _turn_complete(self, report) -> None:
        metrics = self.station.runtime.metrics
        for stage, a, b in (("llm_first_token", report.picked, report.first_delta),
                            ("llm_first_sentence", report.picked, report.first_sentence),
                            ("tts_first_audio", report.first_sentence, report.audio_ready)):
            if a is not None and b is not None and report.kind in ("chat", "host", "say", "script",
                                                                   "thanks"):
                if stage.startswith("llm") and report.kind not in ("chat", "host"):
                    continue
                metrics.observe_stage(stage, max(0.0, b - a))
        d = report.as_dict()["ms"]
        log.info("turn %d (%s): arrival->first audio muxed %s ms [selection %s, first sentence %s, "
                 "tts %s, render+queue %s, mux %s]", report.line_id, report.kind, d["total_to_muxed"],
                 d["selection"], d["first_sentence"], d["tts_first_audio"], d["render_queue"], d["mux"])

    # -- HTTP --------------------------------------------------------------------------
    async def _post_say(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _error(400, "bad_json", "the body must be JSON like {\"text\": \"...\"}")
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            return _error(400, "missing_field", "'text' (a string) is required")
        text = clean_text(data["text"])
        if not text:
            return _error(400, "empty", "'text' is empty")
        if len(text) > MAX_SAY_CHARS:
            return _error(413, "too_long", f"'text' is over {MAX_SAY_CHARS} characters")
        interrupt = data.get("interrupt", False)
        if not isinstance(interrupt, bool):
            return _error(400, "bad_field", "'interrupt' must be true or false")
        if not self.conversation.say(text, interrupt=interrupt):
            return _error(429, "queue_full", "too many lines are waiting; try again later")
        return web.json_response({"status": "queued", "interrupt": interrupt}, status=202)

    async def _post_interrupt(self, request: web.Request) -> web.Response:
        """Stop talking now; answers the frame slot at which the cut went on air (the mixer
        knows it: the media loop may pull a slot between any read here and the cut)."""
        self.conversation.interrupt()
        mixer = self.station.broadcast.mixer
        frame = mixer.cut_slot if mixer.cut_slot is not None else self.station.broadcast.frame_index
        return web.json_response({"status": "interrupted", "frame": frame})

    async def _get_turns(self, request: web.Request) -> web.Response:
        return web.json_response({"turns": self.turns.recent()})

    # -- SIGHUP ------------------------------------------------------------------------
    def _on_reload(self, event: Reload) -> None:
        """Persona, responder, voice, script, thank-yous and overlay follow the reloaded scene."""
        config, scene = event.config, event.scene
        tts = voice_settings(config, scene)
        responder = build_responder(config, scene, self.responder_override)
        settings = thanks_settings(scene.features.get("thanks"), scene.source)
        if tts != self.tts:
            self.engine = build_engine(tts, count_bytes=self.station.runtime.metrics.tts_bytes)
            self.stage.set_engine(self.engine, tts.level_dbfs)
            self.tts = tts
            log.info("reload: voice changed")
        old, self.responder = self.responder, responder
        self.conversation.set_responder(responder)
        self.conversation.set_script(script_schedule(scene.features.get("script"), scene.source))
        if settings is None or self.conversation.thanks is None:
            self.conversation.set_thanks(ThanksQueue(settings) if settings else None)
        else:
            self.conversation.thanks.reconfigure(settings)
        self.overlay = self._make_overlay(scene)
        self.station.broadcast.compositor.set_overlay("chat", None)
        if self.station.control.loop.is_running():
            asyncio.run_coroutine_threadsafe(old.close(), self.station.control.loop)


def _thanks_queue(scene: Scene) -> ThanksQueue | None:
    settings = thanks_settings(scene.features.get("thanks"), scene.source)
    return ThanksQueue(settings) if settings is not None else None


def _label(value: str) -> str:
    cleaned = "".join(c for c in value.lower() if c.isalnum() or c == "_")[:24]
    return cleaned or "other"
