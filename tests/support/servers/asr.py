"""A real asr-serve on a free loopback port, its event loop in a thread."""

from __future__ import annotations

import asyncio
import threading

from broadcaster.asr.server import AsrServer

TOKEN = "test-token-0123456789"


class RunningServer:
    def __init__(self, asr) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = AsrServer(TOKEN, asr, port=0)
        self.call(self.server.start())
        self.url = f"ws://127.0.0.1:{self.server.port}"

    def call(self, coro, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
