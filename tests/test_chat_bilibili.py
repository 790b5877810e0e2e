"""Bilibili live-room chat: the framing with known bytes (pure), then the source against a local
server speaking the same frames: auth, heartbeats and popularity, plain/zlib/brotli batches,
a malformed packet, a dropped connection, a refused key, and where paid items rank."""

import asyncio
import logging
import struct
import zlib

import brotli
import pytest

from broadcaster.backoff import Backoff
from broadcaster.chat import bilibili_protocol as proto
from broadcaster.chat.bilibili import BilibiliSource
from broadcaster.chat.config import build_source
from broadcaster.chat.message import ChatEvent, ChatMessage
from broadcaster.chat.selection import ChatSelector, tier
from tests.support.servers.bilibili import (
    FakeBilibiliServer,
    batch,
    danmaku,
    frame,
    gift,
    interact,
    super_chat,
)

ROOM = 21452505


def fast_backoff():
    return Backoff(initial_s=0.05, factor=1.5, max_s=0.2, jitter=0.1)


# -- framing (pure) -------------------------------------------------------------------------
def test_heartbeat_and_auth_packets_are_the_web_clients_bytes():
    # the web client's heartbeat: 31 bytes, version 1, operation 2, sequence 1, "[object Object]"
    assert proto.heartbeat_packet() == bytes.fromhex(
        "0000001f 0010 0001 00000002 00000001".replace(" ", "")) + b"[object Object]"
    packet = proto.auth_packet(ROOM)
    body = b'{"uid":0,"roomid":21452505,"protover":3,"platform":"web","type":2}'
    assert packet == struct.pack(">IHHII", 16 + len(body), 16, 1, 7, 1) + body
    keyed = proto.auth_packet(ROOM, uid=7, key="tok3n", buvid="B-1")
    assert keyed.endswith(b',"type":2,"buvid":"B-1","key":"tok3n"}')


def test_decode_opens_plain_zlib_and_brotli_batches_of_several_packets():
    payloads = [danmaku("小明", "你好"), gift("小红", "辣条", 2)]
    for mode in ("plain", "zlib", "brotli"):
        packets, errors = proto.decode(batch(payloads, mode))
        assert errors == [], mode
        assert [p.operation for p in packets] == [5, 5]
        assert [proto.json_body(p)["cmd"] for p in packets] == ["DANMU_MSG:4:0:2:2:2:0", "SEND_GIFT"]
    reply, = proto.decode(frame(1, 3, struct.pack(">I", 123456)))[0]
    assert proto.popularity(reply) == 123456
    # a plain packet and a zlib batch in one message, then a heartbeat reply
    mixed = frame(0, 5, b'{"cmd":"A"}') + batch([{"cmd": "B"}], "zlib") + frame(1, 3, b"\0\0\0\7")
    packets, errors = proto.decode(mixed)
    assert [p.body for p in packets] == [b'{"cmd":"A"}', b'{"cmd": "B"}', b"\0\0\0\7"] and not errors


def test_malformed_input_is_reported_and_what_can_be_read_is_kept():
    good = frame(0, 5, b'{"cmd":"A"}')
    # a length past the end: the packets before it are kept, one error
    packets, errors = proto.decode(good + struct.pack(">IHHII", 500, 16, 0, 5, 0) + b"xx")
    assert len(packets) == 1 and len(errors) == 1 and "bad header" in str(errors[0])
    # a corrupt zlib batch and a corrupt brotli batch are skipped, the next packet still read
    packets, errors = proto.decode(frame(2, 5, b"not zlib") + frame(3, 5, b"\xff\xfe") + good)
    assert [p.body for p in packets] == [b'{"cmd":"A"}'] and len(errors) == 2
    assert "zlib" in str(errors[0]) and "brotli" in str(errors[1])
    # a zip bomb is refused rather than inflated
    bomb = frame(3, 5, brotli.compress(b"\0" * (proto.MAX_INFLATED + 100)))
    assert "beyond" in str(proto.decode(bomb)[1][0])
    bomb = frame(2, 5, zlib.compress(b"\0" * (proto.MAX_INFLATED + 100)))
    assert "beyond" in str(proto.decode(bomb)[1][0])
    assert "stray" in str(proto.decode(good + b"\0\0")[1][0])
    with pytest.raises(proto.ProtocolError, match="not JSON"):
        proto.json_body(proto.Packet(0, 5, b"{nope"))
    with pytest.raises(proto.ProtocolError, match="DANMU_MSG"):
        proto.command_to_item({"cmd": "DANMU_MSG", "info": [[], "hi"]}, 0)


def test_commands_become_messages_and_events():
    msg = proto.command_to_item(danmaku("小明", "今天有什么新闻?", admin=True), 5.0)
    assert isinstance(msg, ChatMessage)
    assert (msg.platform, msg.user, msg.text, msg.time, msg.moderator, msg.paid) == \
        ("bilibili", "小明", "今天有什么新闻?", 5.0, True, False)
    sc = proto.command_to_item(super_chat("大卫", "请讲讲天气", price=50), 1.0)
    assert isinstance(sc, ChatMessage) and sc.paid_amount == 50 and sc.currency == "CNY"
    assert sc.text == "请讲讲天气" and sc.id == "bilibili-sc-9001"
    paid = proto.command_to_item(gift("小红", "小花花", num=3, price=100), 1.0)
    assert isinstance(paid, ChatEvent) and (paid.kind, paid.user, paid.gift, paid.count) == \
        ("gift", "小红", "小花花", 3)
    assert paid.paid_amount == pytest.approx(0.3) and paid.currency == "CNY"
    free = proto.command_to_item(gift("阿强", "辣条", num=10, coin_type="silver"), 1.0)
    assert free.kind == "gift" and not free.paid
    assert proto.command_to_item(interact("小王", 2), 1.0).kind == "follow"
    assert proto.command_to_item(interact("小王", 1), 1.0).kind == "entrance"
    assert proto.command_to_item(interact("小王", 3), 1.0) is None     # a share
    assert proto.command_to_item(danmaku("抽奖", "参与抽奖", auto=1), 1.0) is None
    assert proto.command_to_item({"cmd": "ONLINE_RANK_COUNT", "data": {"count": 5}}, 1.0) is None


def test_super_chats_and_paid_gifts_rank_with_paid_messages():
    selector = ChatSelector()
    selector.offer(proto.command_to_item(danmaku("先来", "第一个问题"), 0.0), 0.0)
    selector.offer(proto.command_to_item(super_chat("付费", "付费的问题"), 1.0), 1.0)
    assert selector.pick(2.0).user == "付费"        # the super chat goes first, as on YouTube
    youtube_paid = ChatMessage(platform="youtube", user="y", text="t", paid_amount=5.0)
    assert tier(proto.command_to_item(gift("小红", "小花花"), 0)) == tier(youtube_paid) == 2
    assert tier(proto.command_to_item(gift("阿强", "辣条", coin_type="silver"), 0)) == 0


def test_config_errors_name_the_key(monkeypatch):
    with pytest.raises(ValueError, match=r"chat.sources\[0\]: missing key\(s\) \['room_id'\]"):
        build_source({"type": "bilibili"}, "chat.sources[0]")
    with pytest.raises(ValueError, match="'room_id' must be a whole number"):
        build_source({"type": "bilibili", "room_id": "abc"}, "chat.sources[0]")
    with pytest.raises(ValueError, match="'url' must start with ws://"):
        build_source({"type": "bilibili", "room_id": 1, "url": "http://x"}, "chat.sources[0]")
    with pytest.raises(ValueError, match="unknown key"):
        build_source({"type": "bilibili", "room_id": 1, "key": "inline"}, "chat.sources[0]")
    monkeypatch.setenv("BILIBILI_KEY", "s3cret-key-value")
    with pytest.raises(ValueError, match="'uid' is required") as err:
        build_source({"type": "bilibili", "room_id": 1}, "chat.sources[0]")
    assert "s3cret-key-value" not in str(err.value)
    source = build_source({"type": "bilibili", "room_id": ROOM, "uid": 9}, "chat.sources[0]")
    assert source.url == "wss://broadcastlv.chat.bilibili.com/sub" and source.heartbeat_s == 30


# -- against the local server ------------------------------------------------------------
async def _until(predicate, timeout=5.0, what="condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def test_source_reads_batches_answers_heartbeats_and_survives_a_drop(monkeypatch, caplog):
    monkeypatch.setenv("BILIBILI_KEY", "k3y-that-must-not-leak")
    caplog.set_level(logging.DEBUG)

    async def main():
        server = FakeBilibiliServer(ROOM, popularity=8888)
        url = await server.start()
        source = BilibiliSource(ROOM, uid=77, url=url, heartbeat_s=0.2, backoff=fast_backoff())
        got: list = []
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(got.append, stop))
        try:
            await asyncio.wait_for(server.entered.wait(), 5)
            await _until(lambda: source.popularity == 8888 and server.heartbeats >= 2,
                         what="heartbeats answered")
            await server.send([danmaku("甲", "一"), danmaku("乙", "二")], "plain")
            await server.send([danmaku("丙", "三"), gift("丁", "小花花", 2)], "zlib")
            await server.send([super_chat("戊", "五", price=30), interact("己", 2),
                               interact("庚", 1), {"cmd": "WATCHED_CHANGE", "data": {}}], "brotli")
            await _until(lambda: len(got) == 7, what="7 items")
            # a malformed packet, then a good one in the next message: skipped, source alive
            await server.send_raw(frame(2, 5, b"garbage") + frame(0, 5, b"[1, 2"))
            await server.send_raw(frame(0, 5, b"{}") + struct.pack(">IHHII", 99, 16, 0, 5, 0))
            await server.send([danmaku("辛", "八")], "plain")
            await _until(lambda: len(got) == 8, what="the item after the garbage")
            # the connection drops: the source reconnects, enters again and keeps reading
            await server.drop_all()
            await asyncio.wait_for(server.entered.wait(), 5)
            await server.send([danmaku("壬", "九")], "brotli")
            await _until(lambda: len(got) == 9, what="the item after the reconnect")
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
            await server.close()
        return server, source, got

    server, source, got = asyncio.run(main())
    assert [(type(i).__name__, i.user) for i in got] == [
        ("ChatMessage", "甲"), ("ChatMessage", "乙"), ("ChatMessage", "丙"), ("ChatEvent", "丁"),
        ("ChatMessage", "戊"), ("ChatEvent", "己"), ("ChatEvent", "庚"), ("ChatMessage", "辛"),
        ("ChatMessage", "壬")]
    assert got[3].gift == "小花花" and got[3].count == 2 and got[4].paid_amount == 30
    assert [got[5].kind, got[6].kind] == ["follow", "entrance"]
    assert server.connections == 2 and source.counters["reconnects"] == 1
    assert source.counters["malformed"] == 3
    assert server.problems == []
    assert server.auths[0] == {"uid": 77, "roomid": ROOM, "protover": 3, "platform": "web",
                               "type": 2, "key": "k3y-that-must-not-leak"}
    malformed_lines = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(malformed_lines) == 1, "one report per minute, not one per packet"
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("broadcaster"))
    assert "k3y-that-must-not-leak" not in ours
    assert b'leak"}'.hex(" ") not in ours      # nor the key's tail in a DEBUG frame dump


def test_a_refused_key_and_a_silent_server_are_retried_with_backoff(caplog):
    caplog.set_level(logging.INFO)

    async def main():
        server = FakeBilibiliServer(ROOM, refuse_code=-101)
        url = await server.start()
        source = BilibiliSource(ROOM, url=url, heartbeat_s=0.1, backoff=fast_backoff())
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(lambda item: None, stop))
        try:
            await _until(lambda: server.connections >= 3, what="retries after the refusal")
            server.refuse_code = 0
            await asyncio.wait_for(server.entered.wait(), 5)
            # a server that stops answering heartbeats is given up and entered again
            server.answer_heartbeats = False
            entered = server.connections
            await _until(lambda: server.connections > entered, what="a reconnect after silence")
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
            await server.close()

    asyncio.run(main())
    assert "refused to enter the room (code -101)" in caplog.text
    assert "went silent" in caplog.text


def test_the_intake_hands_events_to_listeners_and_never_queues_them():
    from broadcaster.chat.intake import ChatIntake
    from broadcaster.chat.selection import Accepted, Noted
    intake = ChatIntake(ChatSelector(), clock=lambda: 1.0)
    heard_events, heard_messages = [], []
    intake.event_listeners.append(heard_events.append)
    intake.listeners.append(heard_messages.append)
    event = proto.command_to_item(gift("小红", "小花花"), 1.0)
    assert isinstance(intake.offer(event), Noted) and heard_events == [event]
    assert intake.selector.pending() == 0 and heard_messages == [] and intake.pick() is None
    assert isinstance(intake.offer(proto.command_to_item(danmaku("小明", "你好"), 1.0)), Accepted)
    assert intake.pick().text == "你好" and heard_events == [event]


def test_a_bad_source_in_the_config_file_is_named_by_file_and_key(tmp_path):
    from broadcaster.config import load_config
    from broadcaster.dialogue.live import chat_settings
    from broadcaster.errors import ConfigError
    cfg = tmp_path / "config.yaml"
    cfg.write_text("chat:\n  sources:\n    - {type: stdin}\n    - {type: bilibili, room_id: abc}\n")
    with pytest.raises(ConfigError) as err:
        chat_settings(load_config(cfg, env={}))
    assert err.value.key == "chat.sources[1]" and str(cfg) in str(err.value)
    assert "'room_id' must be a whole number" in str(err.value)
