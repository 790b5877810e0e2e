"""YouTube live chat source against a local server replaying the Data API's JSON."""

import asyncio
import logging

import pytest

from broadcaster.backoff import Backoff
from broadcaster.chat.youtube import YouTubeChatSource, item_to_message
from tests.support.servers.youtube_api import FakeYouTubeApi, superchat_item, text_item


def fast_backoff():
    return Backoff(initial_s=0.1, factor=1.5, max_s=0.3, jitter=0.0)


async def _run(api, source, until, timeout=5.0):
    got, stop = [], asyncio.Event()
    task = asyncio.create_task(source.run(got.append, stop))
    deadline = asyncio.get_running_loop().time() + timeout
    while not until(got):
        assert asyncio.get_running_loop().time() < deadline, f"timed out, got {got}"
        assert not task.done()
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 3)
    return got


def test_item_mapping():
    msg = item_to_message(superchat_item(1, "Fan", "love the show", 5_000_000, "EUR"), 3.0)
    assert (msg.user, msg.text, msg.paid_amount, msg.currency, msg.id) == (
        "Fan", "love the show", 5.0, "EUR", "msg1")
    mod = item_to_message(text_item(2, "Mod", "hi", moderator=True, sponsor=True), 0)
    assert mod.moderator and mod.member and not mod.paid
    assert item_to_message({"snippet": {"type": "messageDeletedEvent"}}, 0) is None


def test_missing_credentials_and_chat_id_are_clear_errors(monkeypatch):
    monkeypatch.delenv("YOUTUBE_API_KEY", raising=False)
    monkeypatch.delenv("YOUTUBE_OAUTH_TOKEN", raising=False)
    with pytest.raises(ValueError, match="YOUTUBE_API_KEY"):
        YouTubeChatSource(live_chat_id="c")
    monkeypatch.setenv("YOUTUBE_API_KEY", "k" * 10)
    with pytest.raises(ValueError, match="live_chat_id"):
        YouTubeChatSource()


def test_polls_at_api_interval_follows_page_tokens_and_skips_backlog(monkeypatch):
    monkeypatch.setenv("YOUTUBE_API_KEY", "AIzaTESTKEY123456")
    monkeypatch.delenv("YOUTUBE_OAUTH_TOKEN", raising=False)

    async def main():
        api = FakeYouTubeApi([
            [text_item(0, "Old", "backlog from before we started")],
            [text_item(1, "Alice", "hello!"),
             superchat_item(2, "Fan", "a question for you", 2_000_000, "USD")],
            [],
            [text_item(3, "Mod", "keep it civil", moderator=True)],
            []], interval_ms=150)
        source = YouTubeChatSource(live_chat_id="CHAT1", base_url=await api.start(),
                                   min_interval_s=0.01, backoff=fast_backoff())
        got = await _run(api, source, lambda g: len(g) >= 3)
        await api.close()
        return api, got

    api, got = asyncio.run(main())
    assert [(m.user, m.text, m.paid_amount, m.moderator) for m in got] == [
        ("Alice", "hello!", 0.0, False), ("Fan", "a question for you", 2.0, False),
        ("Mod", "keep it civil", 0.0, True)]
    q = [r["query"] for r in api.requests]
    assert q[0]["liveChatId"] == "CHAT1" and q[0]["part"] == "snippet,authorDetails"
    assert q[0]["key"] == "AIzaTESTKEY123456" and "pageToken" not in q[0]
    assert [x.get("pageToken") for x in q[1:4]] == ["token1", "token2", "token3"]
    gaps = [b["t"] - a["t"] for a, b in zip(api.requests, api.requests[1:4])]
    assert all(0.14 <= g < 0.5 for g in gaps), gaps  # pollingIntervalMillis honoured


def test_quota_and_server_errors_back_off_then_recover_with_bearer_token(monkeypatch, caplog):
    monkeypatch.delenv("YOUTUBE_API_KEY", raising=False)
    monkeypatch.setenv("YOUTUBE_OAUTH_TOKEN", "ya29.SECRETOAUTHTOKEN")
    caplog.set_level(logging.INFO)

    async def main():
        api = FakeYouTubeApi([(403, "quotaExceeded"), (503, "backendError"),
                              (500, "internalError"),
                              [text_item(1, "Alice", "finally")]], interval_ms=50)
        source = YouTubeChatSource(video_id="VID1", base_url=await api.start(),
                                   skip_backlog=False, min_interval_s=0.01,
                                   backoff=fast_backoff())
        got = await _run(api, source, lambda g: len(g) >= 1)
        await api.close()
        return api, source, got

    api, source, got = asyncio.run(main())
    assert got[0].text == "finally"
    assert api.requests[0]["path"].endswith("/videos")  # live chat id resolved from video
    msgs = [r for r in api.requests if r["path"].endswith("/messages")]
    assert all(r["auth"] == "Bearer ya29.SECRETOAUTHTOKEN" and "key" not in r["query"]
               for r in msgs)
    gaps = [b["t"] - a["t"] for a, b in zip(msgs, msgs[1:4])]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.14 and gaps[2] >= 0.2, gaps  # 0.1, 0.15, 0.225
    assert source.counters["errors"] == 3
    assert "quotaExceeded" in caplog.text and "SECRETOAUTHTOKEN" not in caplog.text


def test_unreachable_server_never_raises(monkeypatch):
    monkeypatch.setenv("YOUTUBE_API_KEY", "AIzaTESTKEY123456")

    async def main():
        source = YouTubeChatSource(live_chat_id="C", base_url="http://127.0.0.1:9/yt",
                                   backoff=fast_backoff())
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(lambda m: None, stop))
        await asyncio.sleep(0.5)
        assert not task.done()
        stop.set()
        await asyncio.wait_for(task, 3)
        return source

    assert asyncio.run(main()).counters["errors"] >= 2
