"""Responder factory from the `responder:` config and the read-aloud responder."""

import asyncio

import pytest

from broadcaster.chat.message import ChatMessage
from broadcaster.reply import make_responder
from broadcaster.reply.llm import LlmResponder
from broadcaster.reply.read_aloud import ReadAloudResponder


def test_default_is_read_aloud_and_reads_messages():
    responder = make_responder(None)
    assert isinstance(responder, ReadAloudResponder)

    async def run(m):
        return [d async for d in responder.respond(m)]

    assert asyncio.run(run(ChatMessage("twitch", "Alice", "hello anchor"))) == [
        "Alice says: hello anchor."]
    assert asyncio.run(run(ChatMessage("youtube", "Bob", "great show!", paid_amount=5,
                                       currency="USD"))) == [
        "Bob sent 5 USD and says: great show!"]


def test_factory_builds_llm_with_override_and_reports_bad_config(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-abcdef")
    cfg = {"type": "read-aloud", "llm": {"model": "m", "base_url": "http://127.0.0.1:9/v1"}}
    responder = make_responder(cfg, persona="You are Nova.", override="llm")
    assert isinstance(responder, LlmResponder) and responder.system.startswith("You are Nova.")
    asyncio.run(responder.close())
    with pytest.raises(ValueError, match="responder.type: 'script'"):
        make_responder({"type": "script"})
    with pytest.raises(ValueError, match="responder: unknown key"):
        make_responder({"kind": "llm"})
    with pytest.raises(ValueError, match="responder.read_aloud.template"):
        make_responder({"read_aloud": {"template": "{name} says {text}"}})


def test_read_aloud_default_does_not_need_openai():
    import subprocess
    import sys
    code = ("import sys; sys.modules['openai'] = None\n"
            "from broadcaster.reply import make_responder\n"
            "print(type(make_responder({})).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ReadAloudResponder"


def test_llm_settings_repr_hides_a_literal_key():
    from broadcaster.reply.llm import LlmSettings
    assert "sk-literal" not in repr(LlmSettings(model="m", api_key="sk-literal-123"))
