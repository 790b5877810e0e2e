"""Twitch IRC source: the parser with real Twitch lines, then real servers on loopback."""

import asyncio
import logging

import pytest

from broadcaster.backoff import Backoff
from broadcaster.chat.irc import TwitchIrcSource, parse_irc_line, privmsg_to_message
from tests.support.servers.ngircd import IrcViewer, ngircd_server
from tests.support.servers.twitch_irc import FakeTwitchServer

TAGGED = ("@badge-info=subscriber/8;badges=moderator/1,subscriber/6;bits=100;color=#0D4200;"
          "display-name=Ronni\\sB;emotes=;id=b34ccfc7-4977-403a-8a94-33c6bac34fb8;mod=1;"
          "room-id=1337;subscriber=1;tmi-sent-ts=1507246572675;turbo=0;user-id=1337;"
          "user-type=mod :ronni!ronni@ronni.tmi.twitch.tv PRIVMSG #ronni :cheer100 Kappa hi")


def fast_backoff():
    return Backoff(initial_s=0.05, factor=1.5, max_s=0.2, jitter=0.1)


def test_parse_twitch_tagged_privmsg():
    line = parse_irc_line(TAGGED)
    assert line.command == "PRIVMSG" and line.params == ["#ronni", "cheer100 Kappa hi"]
    assert line.tags["display-name"] == "Ronni B" and line.nick == "ronni"
    msg = privmsg_to_message(line, 12.5)
    assert (msg.platform, msg.user, msg.text, msg.time) == ("twitch", "Ronni B",
                                                            "cheer100 Kappa hi", 12.5)
    assert msg.moderator and msg.member and msg.paid_amount == 100 and msg.currency == "BITS"
    assert msg.id == "b34ccfc7-4977-403a-8a94-33c6bac34fb8"


def test_parse_plain_lines_and_errors():
    line = parse_irc_line(":alice!~alice@host PRIVMSG #chan :\x01ACTION waves\x01\r\n")
    msg = privmsg_to_message(line, 0)
    assert (msg.user, msg.text, msg.moderator, msg.member, msg.paid) == ("alice", "waves",
                                                                          False, False, False)
    assert parse_irc_line("PING :tmi.twitch.tv").params == ["tmi.twitch.tv"]
    assert parse_irc_line("@a=b\\:c\\\\d :srv 001 me :hi").tags == {"a": "b;c\\d"}
    with pytest.raises(ValueError, match="without a command"):
        parse_irc_line(":prefix-only")


def test_token_requires_nick_and_is_never_logged(monkeypatch):
    monkeypatch.setenv("TWITCH_OAUTH_TOKEN", "abcdefsecret123")
    with pytest.raises(ValueError, match="'nick' is required"):
        TwitchIrcSource("chan")
    with pytest.raises(ValueError, match="channel"):
        TwitchIrcSource("#")


async def _collect_until(got, count, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < count:
        assert asyncio.get_running_loop().time() < deadline, f"only {len(got)} messages"
        await asyncio.sleep(0.01)


def test_real_ngircd_viewer_message_reaches_the_source():
    async def main(port):
        source = TwitchIrcSource("#Studio", host="127.0.0.1", port=port, tls=False,
                                 backoff=fast_backoff(), token_env="")
        got, stop = [], asyncio.Event()
        task = asyncio.create_task(source.run(got.append, stop))
        await asyncio.wait_for(source.joined.wait(), 5)
        viewer = IrcViewer(port, "alice")
        await viewer.connect("studio")
        await viewer.say("studio", "hello anchor, how are you?")
        await viewer.say("studio", "\x01ACTION waves\x01")
        await _collect_until(got, 2)
        stop.set()
        await asyncio.wait_for(task, 3)
        await viewer.close()
        return source, got

    with ngircd_server() as (port, _proc):
        source, got = asyncio.run(main(port))
    assert [(m.platform, m.user, m.text) for m in got] == [
        ("twitch", "alice", "hello anchor, how are you?"), ("twitch", "alice", "waves")]
    assert source.nick.startswith("justinfan")


def test_real_ngircd_restart_source_reconnects():
    async def main():
        with ngircd_server() as (port, proc):
            source = TwitchIrcSource("studio", host="127.0.0.1", port=port, tls=False,
                                     backoff=fast_backoff(), token_env="")
            got, stop = [], asyncio.Event()
            task = asyncio.create_task(source.run(got.append, stop))
            await asyncio.wait_for(source.joined.wait(), 5)
        # server gone: the source keeps retrying and never raises
        await asyncio.sleep(0.3)
        assert not task.done()
        assert source.counters["reconnects"] >= 1
        stop.set()
        await asyncio.wait_for(task, 3)

    asyncio.run(main())


def test_twitch_tags_ping_pong_drop_and_reconnect(monkeypatch, caplog):
    monkeypatch.setenv("TWITCH_OAUTH_TOKEN", "oauth:s3cr3ttokenvalue")
    caplog.set_level(logging.DEBUG)

    async def main():
        server = FakeTwitchServer()
        port = await server.start()
        source = TwitchIrcSource("ronni", host="127.0.0.1", port=port, tls=False,
                                 nick="AnchorBot", backoff=fast_backoff())
        got, stop = [], asyncio.Event()
        task = asyncio.create_task(source.run(got.append, stop))
        await asyncio.wait_for(source.joined.wait(), 5)
        await server.send(TAGGED)
        await server.send("PING :tmi.twitch.tv")
        await _collect_until(got, 1)
        for _ in range(100):
            if "PONG :tmi.twitch.tv" in server.received:
                break
            await asyncio.sleep(0.01)
        await server.drop_all()                       # network drop
        await asyncio.wait_for(server.joined.wait(), 5)
        await server.send(":bob!bob@bob.tmi.twitch.tv PRIVMSG #ronni :back again")
        await _collect_until(got, 2)
        server.joined.clear()
        await server.send(":tmi.twitch.tv RECONNECT")  # Twitch asks clients to move
        await asyncio.wait_for(server.joined.wait(), 5)
        stop.set()
        await asyncio.wait_for(task, 3)
        await server.close()
        return server, got

    server, got = asyncio.run(main())
    assert server.received[:4] == ["CAP REQ :twitch.tv/tags twitch.tv/commands",
                                   "PASS oauth:s3cr3ttokenvalue", "NICK anchorbot",
                                   "USER anchorbot 0 * :anchorbot"]
    assert "PONG :tmi.twitch.tv" in server.received
    assert "CAP END" in server.received and "JOIN #ronni" in server.received
    assert server.connections == 3
    assert got[0].user == "Ronni B" and got[0].paid_amount == 100 and got[0].moderator
    assert (got[1].user, got[1].text, got[1].moderator) == ("bob", "back again", False)
    assert "s3cr3ttokenvalue" not in caplog.text
    assert "reconnecting" in caplog.text or "retrying" in caplog.text


def test_quiet_link_gets_keepalive_ping_and_dead_link_reconnects():
    async def main():
        server = FakeTwitchServer()
        port = await server.start()
        source = TwitchIrcSource("ronni", host="127.0.0.1", port=port, tls=False,
                                 backoff=fast_backoff(), token_env="",
                                 idle_timeout_s=0.2, pong_timeout_s=0.2)
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(lambda m: None, stop))
        await asyncio.wait_for(source.joined.wait(), 5)
        # the fake server never answers PING: after idle + pong timeouts the source reconnects
        for _ in range(300):
            if server.connections >= 2:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 3)
        await server.close()
        return server

    server = asyncio.run(main())
    assert "PING :keepalive" in server.received
    assert server.connections >= 2
