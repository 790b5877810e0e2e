"""The shape every chat source has, and the reconnect loop they share.

A source is an object with `async def run(emit, stop) -> None`: it calls emit(ChatMessage)
for each message (and emit(ChatEvent) for gifts, follows and entrances, where it has them) (synchronously, from the event loop) until `stop` is set, reconnecting with
Backoff on any failure, and never raises (a broken chat must never stop the broadcast).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Protocol

from broadcaster.backoff import Backoff
from broadcaster.chat.message import ChatEvent, ChatMessage
from broadcaster.redact import redact

Emit = Callable[[ChatMessage | ChatEvent], None]


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

    session() runs as a task that is cancelled as soon as stop is set, so sessions need no
    stop checks of their own in their read loops (their `finally` closes the connection).
    session() returns normally when the peer closed the connection (also counted as a
    reconnect) and should call backoff.reset() itself once the connection proved healthy.
    Exceptions are logged (redacted) and counted, never propagated.
    """
    stopper = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            task = asyncio.ensure_future(session())
            try:
                await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            if stop.is_set():
                break
            exc = None if task.cancelled() else task.exception()
            if exc is None:
                log.warning("%s: connection closed, reconnecting", name)
            else:
                counters["errors"] = counters.get("errors", 0) + 1
                log.warning("%s: %s: %s", name, type(exc).__name__, redact(str(exc)))
            counters["reconnects"] = counters.get("reconnects", 0) + 1
            delay = backoff.next_delay()
            log.info("%s: retrying in %.1f s", name, delay)
            if await sleep_or_stop(stop, delay):
                break
    finally:
        stopper.cancel()


async def read_with_timeout(aw: Awaitable, timeout: float):
    """await aw with a timeout (asyncio.TimeoutError), cheaply on Python >= 3.11."""
    if _timeout is not None:
        try:
            async with _timeout(timeout):
                return await aw
        except TimeoutError:
            raise asyncio.TimeoutError from None
    return await asyncio.wait_for(aw, timeout)


_timeout = getattr(asyncio, "timeout", None)


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
