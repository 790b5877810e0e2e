"""Benchmark the chat-to-reply path up to the LLM's first sentence (the part before TTS).

A local OpenAI-compatible server (tests/support/servers/fake_openai.py) answers instantly, unless
--base-url points at a real one. For each of N messages: POST /chat on a real loopback
aiohttp server (ingest_post: client round trip), offer()+pick() on the selector while
background chat keeps its queue busy (selection), then the llm responder until the first
complete sentence (llm_first_sentence); chat_to_first_sentence spans arrival to that point.
Prints p50/p95 per stage. TTS first audio, render and mux are not measured here:
tools/bench_reply_e2e.py runs the whole path to the first audio muxed.

    PYTHONPATH=. python tools/bench_reply.py --messages 40
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broadcaster.chat.message import ChatMessage  # noqa: E402
from broadcaster.chat.selection import ChatSelector, SelectionConfig  # noqa: E402
from broadcaster.chat.web import add_chat_routes  # noqa: E402
from broadcaster.reply.llm import LlmResponder, LlmSettings  # noqa: E402
from tests.support.aio import start_site  # noqa: E402
from tests.support.servers.fake_openai import FakeOpenAI  # noqa: E402

REPLY = ("Great question, thanks for asking! The moon is about 384 thousand kilometres away. "
         "Light covers that in just over a second.")
# Simple stand-in for the TTS helper's splitter: a sentence ends at . ! ? followed by space.
SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def bench(count: int, base_url: str | None, model: str, noise: int) -> dict:
    server = None
    if base_url is None:
        server = FakeOpenAI([("stream", REPLY)])
        base_url = await server.start()
    selector = ChatSelector(SelectionConfig(user_max_messages=1000, max_per_user_queued=1000))
    arrived: asyncio.Queue = asyncio.Queue()

    def on_message(msg: ChatMessage):
        t_arrived = time.perf_counter()
        decision = selector.offer(msg, time.monotonic())
        arrived.put_nowait((t_arrived, time.perf_counter() - t_arrived))
        return decision

    app = web.Application()
    add_chat_routes(app, on_message)
    runner, port = await start_site(app)
    url = f"http://127.0.0.1:{port}/chat"
    responder = LlmResponder(LlmSettings(model=model, base_url=base_url, api_key="bench-key",
                                         memory_turns=6), persona="You are Nova, an anchor.")
    rng = random.Random(0)
    stages: dict[str, list[float]] = {k: [] for k in (
        "ingest_post", "selection", "llm_first_delta", "llm_first_sentence",
        "chat_to_first_sentence")}
    try:
        async with aiohttp.ClientSession() as http:
            # warm up the HTTP connections and the client (not measured)
            async with http.post(url, json={"user": "warm", "text": "warm up"}):
                pass
            await arrived.get()
            [d async for d in responder.respond(selector.pick(time.monotonic()))]
            for i in range(count):
                for j in range(noise):  # other viewers keep the queue non-trivial
                    selector.offer(ChatMessage("bench", f"noise{rng.randrange(10**6)}",
                                               f"noise {i} {j} {rng.random()}"),
                                   time.monotonic())
                t0 = time.perf_counter()
                async with http.post(url, json={"user": f"viewer{i}", "text":
                                                f"How far is the moon, question {i}?",
                                                "paid_amount": 1, "currency": "USD"}) as resp:
                    assert resp.status == 202, await resp.text()
                t_arrived, offer_s = await arrived.get()
                stages["ingest_post"].append(time.perf_counter() - t0)
                t1 = time.perf_counter()
                picked = selector.pick(time.monotonic())
                stages["selection"].append(offer_s + time.perf_counter() - t1)  # offer + pick
                assert picked is not None and picked.user == f"viewer{i}", picked
                t2 = time.perf_counter()
                text, first_delta, first_sentence = "", None, None
                async for delta in responder.respond(picked):
                    now = time.perf_counter()
                    first_delta = first_delta or now
                    text += delta
                    if first_sentence is None and SENTENCE_END.search(text):
                        first_sentence = now
                first_sentence = first_sentence or time.perf_counter()
                stages["llm_first_delta"].append(first_delta - t2)
                stages["llm_first_sentence"].append(first_sentence - t2)
                stages["chat_to_first_sentence"].append(first_sentence - t_arrived)
    finally:
        await responder.close()
        await runner.cleanup()
        if server:
            await server.close()
    assert responder.counters["ok"] == count + 1, responder.counters
    return {name: {"p50_ms": round(pct(v, 50) * 1000, 2), "p95_ms": round(pct(v, 95) * 1000, 2),
                   "mean_ms": round(statistics.fmean(v) * 1000, 2), "n": len(v)}
            for name, v in stages.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=30)
    parser.add_argument("--noise", type=int, default=5, help="background messages per turn")
    parser.add_argument("--base-url", default=None, help="a real OpenAI-compatible server")
    parser.add_argument("--model", default="bench-model")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.messages < 20:
        parser.error("--messages must be at least 20")
    result = asyncio.run(bench(args.messages, args.base_url, args.model, args.noise))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'stage':<26}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
        for name, r in result.items():
            print(f"{name:<26}{r['p50_ms']:>10.2f}{r['p95_ms']:>10.2f}{r['mean_ms']:>10.2f}")
        print("not measured yet (core): tts_first_audio, render, mux")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
