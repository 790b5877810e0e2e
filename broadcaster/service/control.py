"""The local control endpoint: HTTP on 127.0.0.1, run by an asyncio loop in its own thread.

Every request passes the AccessPolicy (Host, Origin, JSON bodies, the token) first.

The stages and the service runtime add their routes (say, chat, mic, metrics) to `app`
before start(). The same loop runs the asyncio side of the broadcaster (conversation, chat
sources, LLM, TTS orchestration).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import threading
import time
from typing import Callable

from aiohttp import web

from broadcaster.errors import BroadcasterError
from broadcaster.logthrottle import LogThrottle
from broadcaster.service.access import AccessPolicy

log = logging.getLogger(__name__)
MAX_CONNECTIONS = 256         # open HTTP/WebSocket connections; when full, idle ones are closed first
IDLE_CONNECTION_S = 15.0      # a connection that sends no request for this long is closed
WANTED_OPEN_FILES = 65536     # the soft descriptor limit is raised towards this (the hard limit caps it)


def access_middleware(policy: AccessPolicy):
    """An aiohttp middleware that answers a refused request with {"error", "detail"}."""

    @web.middleware
    async def check_access(request: web.Request, handler):
        refusal = policy.refusal(request.method, request.path, request.headers, request.query)
        if refusal is not None:
            return web.json_response({"error": refusal.reason, "detail": refusal.detail},
                                     status=refusal.status)
        return await handler(request)

    return check_access


class _CloseAtOnce(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()


class CappedConnections:
    """A protocol factory that keeps at most `limit` connections open: when full, the oldest
    connection with no request in progress (a half-open or idle client) is closed to make room;
    when every one is busy, the new connection is closed at once. Either way one descriptor is
    held per allowed connection, so a flood cannot exhaust the process's file limit.

    A connection counts until its handler lets go of the transport (aiohttp's `connected`), so
    one already closing is neither counted nor closed twice. asyncio drops an accepted socket
    without a word when the factory raises, so an unexpected error here goes to `on_error` and
    the new connection is served uncapped rather than reset."""

    def __init__(self, server: web.Server, limit: int, on_full: Callable[[], None],
                 on_error: Callable[[Exception], None]) -> None:
        self.server, self.limit = server, limit
        self.on_full, self.on_error = on_full, on_error

    def __call__(self) -> asyncio.BaseProtocol:
        try:
            if not self._make_room():
                return _CloseAtOnce()
        except Exception as exc:  # noqa: BLE001 - reported; the connection is still served
            self.on_error(exc)
        return self.server()

    def _make_room(self) -> bool:
        """False when full of busy connections; otherwise True, the oldest idle one closed if
        the cap is reached."""
        connections = [h for h in self.server.connections if h.connected]
        if len(connections) < self.limit:
            return True
        self.on_full()
        # aiohttp's RequestHandler marks a request being handled (WebSockets included);
        # without that attribute every connection counts as busy.
        idle = next((h for h in connections
                     if not getattr(h, "_request_in_progress", True)), None)
        if idle is None:
            return False
        idle.force_close()
        return True


def raise_open_file_limit(wanted: int = WANTED_OPEN_FILES) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (never past the hard limit);
    returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            return soft
    return soft


class ControlServer:
    def __init__(self, host: str, port: int, serve_http: bool = True, token: str | None = None):
        self.host, self.port = host, port
        self.serve_http = serve_http
        self.access = AccessPolicy(host, token)
        self.app = web.Application(client_max_size=64 * 1024, middlewares=[access_middleware(self.access)])
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._throttle = LogThrottle(1.0)
        self._thread = threading.Thread(target=self._run_loop, name="control", daemon=True)
        self._startup: list[Callable] = []

    def on_startup(self, coro_fn: Callable) -> None:
        """Run an async task on the control loop once it is serving."""
        self._startup.append(coro_fn)

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(), self.loop)
        try:
            future.result(timeout=10)
        except OSError as exc:
            raise BroadcasterError(f"control endpoint: cannot listen on {self.host}:{self.port}: "
                                   f"{exc.strerror or exc} (set control.port in the config or "
                                   "--control-port)") from None
        if self.serve_http:
            log.info("control endpoint on http://%s:%d", self.host, self.port)

    async def _serve(self) -> None:
        self.loop.set_exception_handler(self._loop_error)
        if self.serve_http:
            raise_open_file_limit()
            self._runner = web.AppRunner(self.app, access_log=None, keepalive_timeout=IDLE_CONNECTION_S)
            await self._runner.setup()
            factory = CappedConnections(self._runner.server, MAX_CONNECTIONS, self._refused,
                                        self._admit_failed)
            self._listener = await self.loop.create_server(factory, self.host, self.port,
                                                           reuse_address=True)
            sockets = self._listener.sockets or []
            if sockets:
                self.port = sockets[0].getsockname()[1]
        for fn in self._startup:
            self.loop.create_task(fn())

    def _refused(self) -> None:
        self._storm("connections", f"control endpoint: {MAX_CONNECTIONS} connections open; "
                                   "closing idle ones")

    def _admit_failed(self, exc: Exception) -> None:
        self._storm("admit", f"control endpoint: cannot apply the connection cap, serving the "
                             f"connection anyway: {type(exc).__name__}: {exc}")

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        """Errors the loop itself reports (failed accepts: 'Too many open files'), one line a
        second per kind, without a traceback for an OSError."""
        exc = context.get("exception")
        if isinstance(exc, OSError):
            self._storm(f"os:{exc.errno}", f"control endpoint: {context.get('message')}: "
                                          f"{exc.strerror or exc}")
            return
        loop.default_exception_handler(context)

    def _storm(self, key: str, message: str) -> None:
        held = self._throttle.allow(key, time.monotonic())
        if held is not None:
            log.warning("%s%s", message, f" ({held} more in the last second)" if held else "")

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro, timeout: float = 5.0):
        """Run a coroutine on the control loop from another thread and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def shutdown():
            if self._listener is not None:
                self._listener.close()
            if self._runner is not None:
                await self._runner.cleanup()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=5)
        except Exception as exc:  # shutting down: report, don't raise
            log.debug("control shutdown: %s", exc)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
