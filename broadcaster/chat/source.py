"""The shape every chat source has, and the reconnect loop they share.

A source is an object with `async def run(emit, stop) -> None`: it calls emit(ChatMessage)
for each message (synchronously, from the event loop) until `stop` is set, reconnecting with
Backoff on any failure, and never raises (a broken chat must never stop the broadcast).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Protocol

from broadcaster.chat.backoff import Backoff
from broadcaster.chat.message import ChatMessage
from broadcaster.redact import redact

Emit = Callable[[ChatMessage], None]


class ChatSource(Protocol):
    name: str

    async def run(self, emit: Emit, stop: asyncio.Event) -> None: ...


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; return True if stop was set meanwhile."""
    if stop.is_set():
        return True
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
        return True
    except asyncio.TimeoutError:
        return False


async def run_with_reconnect(name: str, session: Callable[[], Awaitable[None]],
                             stop: asyncio.Event, backoff: Backoff,
                             log: logging.Logger, counters: dict[str, int]) -> None:
    """Call session() until stop is set; after each failure or drop wait backoff.next_delay().

    session() returns normally when the peer closed the connection (also counted as a
    reconnect) and should call backoff.reset() itself once the connection proved healthy.
    Exceptions are logged (redacted) and counted, never propagated; cancellation is.
    """
    while not stop.is_set():
        try:
            await session()
            if stop.is_set():
                break
            log.warning("%s: connection closed, reconnecting", name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a chat source must survive anything
            counters["errors"] = counters.get("errors", 0) + 1
            log.warning("%s: %s: %s", name, type(exc).__name__, redact(str(exc)))
        counters["reconnects"] = counters.get("reconnects", 0) + 1
        delay = backoff.next_delay()
        log.info("%s: retrying in %.1f s", name, delay)
        if await sleep_or_stop(stop, delay):
            break


async def race_stop(aw: Awaitable, stop: asyncio.Event, timeout: float | None):
    """Await aw, but give up when stop is set (returns None) or after timeout (TimeoutError)."""
    task = asyncio.ensure_future(aw)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stopper}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task in done:
        return task.result()
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass
    if stop.is_set():
        return None
    raise asyncio.TimeoutError
