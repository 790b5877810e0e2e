"""Chat config parsing and the intake glue with several real sources at once."""

import asyncio
import os
import time

import aiohttp
import pytest
from aiohttp import web

from broadcaster.chat.config import chat_settings_from_dict
from broadcaster.chat.intake import ChatIntake
from broadcaster.chat.irc import TwitchIrcSource
from broadcaster.chat.selection import ChatSelector
from broadcaster.chat.stdin import StdinSource
from broadcaster.chat.web import add_chat_routes
from broadcaster.chat.youtube import YouTubeChatSource
from tests.support.aio import start_site
from tests.support.servers.twitch_irc import FakeTwitchServer


def test_settings_build_sources_and_name_bad_keys(monkeypatch):
    monkeypatch.setenv("YOUTUBE_API_KEY", "AIzaKEY123456")
    s = chat_settings_from_dict({
        "backoff": {"first_s": 1, "cap_s": 30},
        "selection": {"max_chars": 200, "blocked_words": ["spam"]},
        "sources": [{"type": "twitch", "channel": "Studio", "tls": False, "port": 6667},
                    {"type": "youtube", "video_id": "abc"}, {"type": "stdin", "user": "me"}]})
    assert s.http is True and s.selection.max_chars == 200
    tw, yt, si = s.sources
    assert isinstance(tw, TwitchIrcSource) and tw.channel == "studio" and tw.port == 6667
    assert tw.backoff.initial_s == 1 and tw.backoff.max_s == 30
    assert isinstance(yt, YouTubeChatSource) and isinstance(si, StdinSource) and si.user == "me"
    with pytest.raises(ValueError, match=r"chat.sources\[0\].type: 'irc'"):
        chat_settings_from_dict({"sources": [{"type": "irc"}]})
    with pytest.raises(ValueError, match=r"chat.sources\[0\]: unknown key.*chanel"):
        chat_settings_from_dict({"sources": [{"type": "twitch", "chanel": "x"}]})
    with pytest.raises(ValueError, match=r"chat.sources\[0\]: .*channel"):
        chat_settings_from_dict({"sources": [{"type": "twitch"}]})
    with pytest.raises(ValueError, match=r"chat.backoff: unknown key"):
        chat_settings_from_dict({"backoff": {"first": 1}})
    with pytest.raises(ValueError, match=r"chat.selection: unknown key"):
        chat_settings_from_dict({"selection": {"nope": 1}})


def test_intake_runs_several_sources_and_http_into_one_selector():
    async def main():
        irc = FakeTwitchServer()
        port = await irc.start()
        rfd, wfd = os.pipe()
        settings = chat_settings_from_dict({"backoff": {"first_s": 0.05, "cap_s": 0.1},
                                            "sources": [
            {"type": "twitch", "channel": "ronni", "host": "127.0.0.1", "port": port,
             "tls": False, "token_env": ""}, {"type": "stdin"}]})
        settings.sources[1].fd = rfd
        intake = ChatIntake(ChatSelector(settings.selection), settings.sources)
        seen = []
        intake.listeners.append(lambda m: seen.append(m.platform))
        app = web.Application()
        add_chat_routes(app, intake.offer)
        runner, port = await start_site(app)
        url = f"http://127.0.0.1:{port}/chat"
        stop = asyncio.Event()
        task = asyncio.create_task(intake.run(stop))
        assert not await intake.wait(0.05)
        await asyncio.wait_for(irc.joined.wait(), 5)
        await irc.send("@display-name=Zed;mod=0 :zed!zed@zed.tmi.twitch.tv PRIVMSG #ronni :hi tw")
        os.write(wfd, b"@sam hi from stdin\n")
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json={"user": "web", "text": "hi from web"}) as r:
                assert r.status == 202
        picked = []
        deadline = time.monotonic() + 5
        while len(picked) < 3 and time.monotonic() < deadline:
            if await intake.wait(0.5):
                m = intake.pick()
                if m:
                    picked.append((m.platform, m.user, m.text))
        stop.set()
        await asyncio.wait_for(task, 3)
        os.close(wfd)
        os.close(rfd)
        await runner.cleanup()
        await irc.close()
        return picked, seen

    picked, seen = asyncio.run(main())
    assert sorted(picked) == [("http", "web", "hi from web"), ("stdin", "sam", "hi from stdin"),
                              ("twitch", "Zed", "hi tw")]
    assert sorted(seen) == ["http", "stdin", "twitch"]


def test_irc_flood_through_intake_keeps_the_anchor_answering():
    """20k tagged PRIVMSGs as fast as loopback carries them; a 'director' picks every 20 ms."""
    async def main():
        irc = FakeTwitchServer()
        port = await irc.start()
        settings = chat_settings_from_dict({"sources": [
            {"type": "twitch", "channel": "ronni", "host": "127.0.0.1", "port": port,
             "tls": False, "token_env": ""}]})
        intake = ChatIntake(ChatSelector(settings.selection), settings.sources)
        stop = asyncio.Event()
        task = asyncio.create_task(intake.run(stop))
        await asyncio.wait_for(irc.joined.wait(), 5)
        picks = []

        async def director():
            while not stop.is_set():
                await asyncio.sleep(0.02)
                m = intake.pick()
                if m:
                    picks.append((time.monotonic(), m.user))

        directing = asyncio.create_task(director())
        start = time.monotonic()
        lines = []
        for i in range(20_000):
            user = "spammer" if i % 2 else f"viewer{i % 5000}"
            lines.append(f"@display-name={user};mod=0;id=m{i} :{user}!{user}@x PRIVMSG #ronni "
                         f":message {i} number {i * 7}")
        writer = irc.clients[0]
        for k in range(0, len(lines), 1000):
            writer.write(("\r\n".join(lines[k:k + 1000]) + "\r\n").encode())
            await writer.drain()
        source = settings.sources[0]
        while source.counters["messages"] < 20_000 and time.monotonic() - start < 20:
            await asyncio.sleep(0.01)
        flood_s = time.monotonic() - start
        await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(asyncio.gather(task, directing), 3)
        await irc.close()
        return intake, source, picks, start, flood_s

    intake, source, picks, start, flood_s = asyncio.run(main())
    assert source.counters["messages"] == 20_000
    sizes = intake.selector.state_sizes()
    cfg = intake.selector.config
    assert sizes["queue"] <= cfg.max_queue and sizes["rate_users"] <= cfg.tracked_users
    during = [u for t, u in picks if t - start <= flood_s]
    # the source yields to the loop during a flood: the director's 20 ms ticks keep coming
    assert len(during) >= 0.3 * flood_s / 0.02, (len(during), flood_s)
    assert sum(u == "spammer" for _, u in picks) <= 2
    print(f"irc flood: 20000 messages in {flood_s:.2f} s "
          f"({20_000 / flood_s:.0f}/s), {len(during)} picks during it")


def test_the_intake_logs_what_happened_to_each_message():
    from broadcaster.chat.message import ChatMessage
    from broadcaster.chat.selection import SelectionConfig
    now = [100.0]
    intake = ChatIntake(ChatSelector(SelectionConfig(max_chars=20)), clock=lambda: now[0], log_size=3)
    ok = intake.offer(ChatMessage("test", "ann", "hello there")).message
    intake.offer(ChatMessage("test", "bob", "x" * 50))
    skip = intake.offer(ChatMessage("test", "cat", "skip me please")).message
    now[0] = 102.0
    assert [(q["user"], q["waited_s"]) for q in intake.queue()] == [("ann", 2.0), ("cat", 2.0)]
    assert intake.remove(skip.id) == skip and intake.remove(skip.id) is None
    assert intake.pick() == ok
    log = intake.recent()
    assert [(e["user"], e["outcome"], e["reason"]) for e in log] == \
        [("bob", "refused", "too_long"), ("cat", "removed", None), ("ann", "picked", None)]
    intake.offer(ChatMessage("test", "dan", "y" * 50))
    assert len(intake.recent()) == 3 and intake.recent()[-1]["user"] == "dan"     # bounded
