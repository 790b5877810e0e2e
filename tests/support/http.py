"""Driving a real running broadcaster over its control endpoint, and servers in a thread."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request


def http_json(method: str, url: str, body: dict | None = None, timeout: float = 5.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_on_air(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, body = http_json("GET", f"http://127.0.0.1:{port}/healthz", timeout=1)
            if status == 200 and body.get("on_air"):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the broadcaster did not come on air")


def wait_turns(port: int, predicate, timeout: float = 30.0) -> list[dict]:
    """Poll GET /turns until predicate(turns) is true; returns the turns."""
    deadline = time.monotonic() + timeout
    turns: list[dict] = []
    while time.monotonic() < deadline:
        _, body = http_json("GET", f"http://127.0.0.1:{port}/turns")
        turns = body["turns"]
        if predicate(turns):
            return turns
        time.sleep(0.2)
    raise AssertionError(f"turns never matched: {turns}")


class LoopThread:
    """An asyncio loop in a thread, for running local servers beside a subprocess."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
