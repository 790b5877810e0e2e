"""asyncio servers beside synchronous test code: a loop in a thread, aiohttp apps on free ports."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from aiohttp import web


class LoopThread:
    """An asyncio loop running in a daemon thread; run() executes a coroutine on it."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout or self.timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


async def start_site(app: web.Application, port: int = 0,
                     **runner_options) -> tuple[web.AppRunner, int]:
    """Serve app on 127.0.0.1:port (0: a free one); returns the runner (cleanup() stops it) and
    the port."""
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, runner.addresses[0][1]


class AppServer:
    """Base for a fake HTTP API served on the caller's running loop: a subclass adds its routes
    in add_routes(); start() returns base_url (http://127.0.0.1:PORT + prefix)."""

    prefix = ""
    runner_options: dict = {}

    def __init__(self) -> None:
        self.runner: web.AppRunner | None = None
        self.base_url = ""

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1:port (0: a free one); start it again on the same port after
        close() to bring a server that was down back."""
        app = web.Application()
        self.add_routes(app)
        self.runner, port = await start_site(app, port, **self.runner_options)
        self.base_url = f"http://127.0.0.1:{port}{self.prefix}"
        return self.base_url

    async def close(self) -> None:
        if self.runner:
            await self.runner.cleanup()


@contextlib.contextmanager
def serve_app(app: web.Application, **runner_options) -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) while app serves from a LoopThread."""
    loop = LoopThread()
    try:
        runner, port = loop.run(start_site(app, **runner_options))
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            loop.run(runner.cleanup())
    finally:
        loop.close()
