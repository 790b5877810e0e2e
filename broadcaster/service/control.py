"""The local control endpoint: HTTP on 127.0.0.1, run by an asyncio loop in its own thread.

The stages and the service runtime add their routes (say, chat, mic, metrics) to `app`
before start(). The same loop runs the asyncio side of the broadcaster (conversation, chat
sources, LLM, TTS orchestration).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Callable

from aiohttp import web

from broadcaster.errors import BroadcasterError

log = logging.getLogger(__name__)


class ControlServer:
    def __init__(self, host: str, port: int, serve_http: bool = True):
        self.host, self.port = host, port
        self.serve_http = serve_http
        self.app = web.Application(client_max_size=64 * 1024)
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
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
        if self.serve_http:
            self._runner = web.AppRunner(self.app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port)
            await site.start()
            sockets = getattr(site._server, "sockets", None) or []
            if sockets:
                self.port = sockets[0].getsockname()[1]
        for fn in self._startup:
            self.loop.create_task(fn())

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
