#!/usr/bin/env python3
"""End-to-end reply latency: chat message in -> first audio of the reply muxed into the stream.

Starts a real broadcaster (llm responder, Piper voice, puppet anchor, 854x480@20 to a file)
against a local OpenAI-compatible server that answers instantly (the real openai client talks
to it), posts N chat messages one at a time through POST /chat, and reads each turn's timings
from GET /turns. Prints p50/p95 of the total and of each stage:
  selection   arrival -> picked by the chat selector
  first_sentence   picked -> the LLM's first complete sentence
  tts_first_audio  first sentence -> its first 48 kHz samples ready
  render_queue     samples ready -> first frame slot carrying them (render + pacing)
  mux              that slot -> written to the output

    .venv/bin/python tools/bench_reply_e2e.py [--messages 24]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.aio import LoopThread  # noqa: E402
from tests.support.broadcaster_proc import (  # noqa: E402
    broadcaster_cmd,
    read_turns,
    run_env,
    wait_on_air,
    wait_turns,
    write_config,
)
from tests.support.http import http_json  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.processes import stop  # noqa: E402
from tests.support.servers.fake_openai import FakeOpenAI  # noqa: E402

QUESTIONS = ["What is your favourite colour?", "How do you make a stream look good?",
             "Can you say hello to my friend?", "What are we talking about today?",
             "Do you like music?", "How long have you been live?"]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=24)
    args = ap.parse_args()
    loop = LoopThread()
    fake = FakeOpenAI([("stream", "Great question, thanks for asking. Let me tell you a little more about it.")])
    base_url = loop.run(fake.start())
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp) / "config.yaml",
                              responder={"type": "llm", "llm": {"base_url": base_url, "model": "bench"}})
        port = free_port()
        proc = subprocess.Popen(broadcaster_cmd("run", "-c", str(config), "--output", str(Path(tmp) / "bench.flv"),
                                                "--control-port", str(port), "--log-level", "warning"),
                                env=run_env(OPENAI_API_KEY="sk-bench"), cwd=ROOT)
        try:
            wait_on_air(port)
            time.sleep(1.0)
            for i in range(args.messages):
                http_json("POST", f"http://127.0.0.1:{port}/chat",
                          {"user": f"viewer{i}", "text": QUESTIONS[i % len(QUESTIONS)] + f" ({i})"})
                wait_turns(port, lambda t: len(t) > i and t[i]["spoken"] and t[i]["ms"]["total_to_muxed"] is not None,
                           timeout=60)
                time.sleep(0.6)       # let the anchor finish its pause between turns: measure from idle
            turns = read_turns(port)
        finally:
            stop(proc, timeout=30)
            loop.run(fake.close())
            loop.close()
    print(f"machine: {os.cpu_count()} cores; {len(turns)} chat turns, local instant OpenAI-compatible server")
    for key in ("total_to_muxed", "selection", "first_sentence", "tts_first_audio", "render_queue", "mux"):
        values = [t["ms"][key] for t in turns if t["ms"][key] is not None]
        print(f"  {key:16s} p50 {statistics.median(values):7.1f} ms   p95 {pct(values, 95):7.1f} ms   (n={len(values)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
