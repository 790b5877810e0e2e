"""Client of `asr-serve`: streams the mic as Opus, receives partial/final transcripts.

Backpressure: frames are Opus-encoded at once (the encoder state must stay continuous) and
queued in a bounded queue (queue_frames, default 25 = 0.5 s). Live mic (drop_when_full=True):
when the link cannot keep up the OLDEST packets are dropped; their sequence numbers are
skipped, so the server conceals short gaps and keeps its clock. Files (drop_when_full=False):
the producer waits instead. Heartbeats: WebSocket pings every ping_interval; no pong within
ping_timeout closes the link. Reconnect: exponential backoff with jitter; frames queued
meanwhile are kept up to the queue bound. An auth refusal (close 1008) is not retried.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from typing import Callable

import numpy as np

from broadcaster.asr import protocol as P
from broadcaster.backoff import Backoff

log = logging.getLogger(__name__)


class AsrAuthError(RuntimeError):
    """The server refused the token (not retried)."""


class RemoteAsrClient:
    """Async client. Use: await start(); await send_frame(f) (or submit_threadsafe(f) from a
    capture thread); await finish(); on_message(dict) gets every server JSON message."""

    def __init__(self, url: str, token: str, on_message: Callable[[dict], None], *,
                 queue_frames: int = 25, drop_when_full: bool = True, bitrate: int = P.OPUS_BITRATE,
                 ping_interval: float = 5.0, ping_timeout: float = 10.0, backoff: Backoff | None = None) -> None:
        from broadcaster.redact import register_secret
        register_secret(token)
        self.url, self._token, self.on_message = url, token, on_message
        self.drop_when_full = drop_when_full
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.backoff = backoff or Backoff(0.5, 2.0, 10.0)
        self._enc = P.OpusEncoder(bitrate)
        self._queue: collections.deque[bytes] = collections.deque()
        self._queue_max = queue_frames
        self._seq = 0
        self._has_data: asyncio.Event | None = None
        self._has_room: asyncio.Event | None = None
        self._ready: asyncio.Event | None = None
        self._done: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closing = False
        self._ending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self.bytes_sent = 0          # WebSocket payload bytes of audio messages (header + Opus)
        self.wire_bytes_sent = 0     # + WebSocket framing (client frames: 2-4 B + 4 B mask)
        self.frames_sent = 0
        self.frames_dropped = 0
        self.connects = 0

    async def start(self) -> "RemoteAsrClient":
        self._loop = asyncio.get_running_loop()
        self._has_data, self._has_room = asyncio.Event(), asyncio.Event()
        self._ready, self._done = asyncio.Event(), asyncio.Event()
        self._has_room.set()
        self._task = self._loop.create_task(self._run())
        return self

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until the server accepted the hello; raises AsrAuthError when it refused."""
        waits = [asyncio.ensure_future(self._ready.wait()), asyncio.ensure_future(self._done.wait())]
        try:
            done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        if self.error is not None:
            raise self.error
        if not done:
            raise asyncio.TimeoutError(f"asr server not ready after {timeout:.0f} s")

    def _enqueue(self, packet: bytes) -> None:
        framed = P.pack_frame(self._seq, packet)
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        if len(self._queue) >= self._queue_max:
            self._queue.popleft()
            self.frames_dropped += 1
        self._queue.append(framed)
        self._has_data.set()
        if len(self._queue) >= self._queue_max:
            self._has_room.clear()

    async def send_frame(self, frame: np.ndarray) -> None:
        """Queue one 20 ms float32 frame (waits for room unless drop_when_full)."""
        if self.error is not None:
            raise self.error
        packet = self._enc.encode(frame)
        if not self.drop_when_full:
            while len(self._queue) >= self._queue_max:
                self._has_room.clear()
                await self._has_room.wait()
                if self.error is not None:
                    raise self.error
        self._enqueue(packet)

    def submit_threadsafe(self, frame: np.ndarray) -> None:
        """From a capture thread: encode and queue (drop-oldest policy), never blocks."""
        packet = self._enc.encode(frame)
        self._loop.call_soon_threadsafe(self._enqueue, packet)

    async def finish(self, timeout: float = 30.0) -> None:
        """Send what is queued, then 'end'; wait for the server's 'done'."""
        self._ending = True
        self._has_data.set()
        await asyncio.wait_for(self._done.wait(), timeout)
        if self.error is not None:
            raise self.error
        await self.close()

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def _run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed
        failures = 0
        while not self._closing:
            try:
                async with connect(self.url, max_size=P.WS_MAX_SIZE, ping_interval=self.ping_interval,
                                   ping_timeout=self.ping_timeout, close_timeout=2, open_timeout=5) as ws:
                    await ws.send(json.dumps({"type": "hello", "token": self._token, "codec": "opus",
                                              "sample_rate": P.SAMPLE_RATE, "frame_ms": 20}))
                    first = P.parse_json(await ws.recv())
                    if first["type"] != "ready":
                        self._dispatch(first)
                        if first.get("code") in ("auth_failed", "auth_required"):
                            raise AsrAuthError(f"asr server refused the token: {first.get('message')}")
                        raise ConnectionError(f"asr server refused: {first}")
                    self.connects += 1
                    failures = 0
                    self._ready.set()
                    await self._session(ws)
                    return
            except AsrAuthError as exc:
                self.error = exc
                self._done.set()
                self._has_room.set()
                log.error("%s", exc)
                return
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionClosed, ConnectionError, asyncio.TimeoutError, P.ProtocolError) as exc:
                self._ready.clear()
                failures += 1
                delay = self.backoff.delay(failures - 1)
                log.warning("asr client: connection to %s lost (%s); retry in %.1fs",
                            self._safe_url(), type(exc).__name__, delay)
                await asyncio.sleep(delay)

    def _safe_url(self) -> str:
        from broadcaster.redact import redact_url
        return redact_url(self.url)

    def _dispatch(self, msg: dict) -> None:
        try:
            self.on_message(msg)
        except Exception:
            log.exception("asr client: on_message callback failed")

    async def _session(self, ws) -> None:
        async def receiver() -> None:
            async for text in ws:
                if not isinstance(text, str):
                    continue
                msg = P.parse_json(text)
                self._dispatch(msg)
                if msg["type"] == "done":
                    self._done.set()
                    return
                if msg["type"] == "error":
                    raise ConnectionError(f"asr server error {msg.get('code')}: {msg.get('message')}")

        async def sender() -> None:
            while True:
                while self._queue:
                    framed = self._queue[0]
                    await ws.send(framed)
                    self._queue.popleft()
                    self._has_room.set()
                    self.bytes_sent += len(framed)
                    self.wire_bytes_sent += len(framed) + (6 if len(framed) < 126 else 8)
                    self.frames_sent += 1
                if self._ending:
                    await ws.send(json.dumps({"type": "end"}))
                    return
                self._has_data.clear()
                await self._has_data.wait()

        recv_task = asyncio.ensure_future(receiver())
        send_task = asyncio.ensure_future(sender())
        try:
            waiting = {recv_task, send_task}
            while recv_task in waiting:
                done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    if t.exception() is not None:
                        raise t.exception()
        finally:
            for t in (recv_task, send_task):
                t.cancel()
        if not self._done.is_set():
            raise ConnectionError("connection closed before 'done'")
