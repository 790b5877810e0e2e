"""POST /chat and /chat/ws on a real aiohttp server on loopback, plus the stdin source."""

import asyncio
import os
import time

import aiohttp
from aiohttp import web

from broadcaster.chat.selection import ChatSelector, SelectionConfig
from broadcaster.chat.stdin import StdinSource, line_to_message
from broadcaster.chat.web import add_chat_routes, broadcast, chat_hub
from tests.support.aio import start_site


async def _serve(on_message):
    app = web.Application()
    add_chat_routes(app, on_message, ws_queue_size=8)
    runner, port = await start_site(app)
    return app, runner, f"http://127.0.0.1:{port}"


def test_post_chat_answers_202_or_4xx_with_reason():
    selector = ChatSelector(SelectionConfig(max_chars=50, blocked_words=("badword",),
                                            blocked_users=("troll",), user_max_messages=2))

    async def main():
        app, runner, url = await _serve(lambda m: selector.offer(m, time.monotonic()))
        results = []
        async with aiohttp.ClientSession() as http:
            async def post(body, raw=None):
                kw = {"data": raw, "headers": {"Content-Type": "application/json"}} \
                    if raw is not None else {"json": body}
                async with http.post(url + "/chat", **kw) as resp:
                    results.append((resp.status, await resp.json()))
            await post({"user": "alice", "text": "hello there", "member": True})
            await post(None, raw=b"{not json")
            await post({"user": "bob"})
            await post({"user": "bob", "text": 5})
            await post({"user": "bob", "text": "hi", "moderator": "yes"})
            await post({"user": "bob", "text": "x" * 51})
            await post({"user": "bob", "text": "you BADWORD"})
            await post({"user": "Troll", "text": "hi"})
            await post({"user": "carol", "text": "first thing"})
            await post({"user": "carol", "text": "second thing"})
            await post({"user": "carol", "text": "third thing"})
            await post({"user": "dave", "text": "HELLO THERE!!"})
            await post(None, raw=b'{"user": "a", "text": "' + b"y" * 20000 + b'"}')
        await runner.cleanup()
        return results

    results = asyncio.run(main())
    assert results[0][0] == 202 and results[0][1]["status"] == "queued"
    assert [(s, b.get("error")) for s, b in results[1:]] == [
        (400, "bad_json"), (400, "missing_field"), (400, "bad_field"), (400, "bad_field"),
        (413, "too_long"), (403, "blocked_word"), (403, "blocked_user"),
        (202, None), (202, None), (429, "rate_limited"), (409, "duplicate"),
        (413, "body_too_large")]
    assert results[2][1]["detail"] == "missing field 'text'"
    picked = selector.pick(time.monotonic())
    assert (picked.platform, picked.user, picked.text, picked.member) == (
        "http", "alice", "hello there", True)


def test_websocket_accepts_refuses_and_receives_broadcasts():
    selector = ChatSelector(SelectionConfig(blocked_words=("spam",)))

    async def main():
        app, runner, url = await _serve(lambda m: selector.offer(m, time.monotonic()))
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(url + "/chat/ws") as ws, \
                    http.ws_connect(url + "/chat/ws") as overlay:
                await ws.send_json({"user": "bot", "text": "a question", "request_id": 7})
                first = await ws.receive_json(timeout=3)
                await ws.send_json({"user": "bot", "text": "buy spam"})
                second = await ws.receive_json(timeout=3)
                await ws.send_str("nope")
                third = await ws.receive_json(timeout=3)
                assert chat_hub(app).clients == 2
                broadcast(app, {"type": "reply", "to": "bot", "text": "Thanks for asking!"})
                fourth = await ws.receive_json(timeout=3)
                fifth = await overlay.receive_json(timeout=3)
        await runner.cleanup()
        return first, second, third, fourth, fifth

    first, second, third, fourth, fifth = asyncio.run(main())
    assert first["type"] == "accepted" and first["request_id"] == 7
    assert first["message"]["user"] == "bot" and first["message"]["platform"] == "ws"
    assert (second["type"], second["error"]) == ("refused", "blocked_word")
    assert (third["type"], third["error"]) == ("refused", "bad_json")
    assert fourth == fifth == {"type": "reply", "to": "bot", "text": "Thanks for asking!"}


def test_slow_websocket_client_is_dropped_not_waited_for():
    async def main():
        app, runner, url = await _serve(lambda m: None)
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(url + "/chat/ws") as ws:
                hub = chat_hub(app)
                # the pump drains the queue as fast as the socket takes it; a burst far larger
                # than the queue before the loop runs again overflows it
                for i in range(50):
                    hub.broadcast({"type": "reply", "n": i})
                assert hub.counters["dropped_slow_client"] == 1 and hub.clients == 0
                msg = None
                for _ in range(60):
                    msg = await ws.receive(timeout=3)
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        break
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await runner.cleanup()

    asyncio.run(main())


def test_stdin_source_reads_a_pipe_and_stops_on_eof():
    async def main():
        rfd, wfd = os.pipe()
        source = StdinSource(fd=rfd, user="host")
        got, stop = [], asyncio.Event()
        task = asyncio.create_task(source.run(got.append, stop))
        os.write(wfd, "hello from the terminal\n@alice what time is it?\n\n".encode())
        for _ in range(300):
            if len(got) >= 2:
                break
            await asyncio.sleep(0.01)
        os.close(wfd)
        await asyncio.wait_for(task, 3)  # EOF ends the source
        os.close(rfd)
        return got

    got = asyncio.run(main())
    assert [(m.platform, m.user, m.text) for m in got] == [
        ("stdin", "host", "hello from the terminal"), ("stdin", "alice", "what time is it?")]


def test_stdin_source_stops_promptly_while_waiting(tmp_path):
    async def main():
        rfd, wfd = os.pipe()
        stop = asyncio.Event()
        task = asyncio.create_task(StdinSource(fd=rfd).run(lambda m: None, stop))
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 1)
        os.close(rfd)
        os.close(wfd)

    asyncio.run(main())
    path = tmp_path / "lines.txt"
    path.write_text("one\n@bob two\n")
    got = []

    async def from_file():
        with open(path) as fh:
            await StdinSource(fd=fh.fileno()).run(got.append, asyncio.Event())

    asyncio.run(from_file())
    assert [(m.user, m.text) for m in got] == [("host", "one"), ("bob", "two")]
    assert line_to_message("   ", "host", 0) is None
