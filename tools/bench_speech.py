"""Benchmark the speaking anchor on this machine. It prints:

- time from text in to first speech sample ready (SpeechStage + Piper, first sentence of 8 words)
- Piper real-time factor (synthesis time / audio duration), one intra-op thread
- puppet render fps at 640x480 and 1280x720 anchor sizes, one core (intra_op_num_threads=1)
- Wav2Lip-shaped model fps (random weights; batch 1 = live path, batch 16 = clip path)
Run: PYTHONPATH=. python tools/bench_speech.py [--wav2lip MODEL.onnx] [--fps 20] [--quick]
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


class NullSink:
    def push(self, pcm, caption, line_id):
        pass

    def cut(self):
        pass


async def _tokens(text: str):
    for i, word in enumerate(text.split(" ")):
        yield (" " if i else "") + word


def bench_first_audio(piper: PiperEngine, runs: int, fragment: int | None) -> list[float]:
    stage = SpeechStage(piper, NullSink(), first_fragment_words=fragment)
    out = []
    try:
        for i in range(runs):
            report = asyncio.run(stage.speak(_tokens(FIRST + REST), line_id=i))
            out.append(report.first_audio_latency_s)
    finally:
        stage.close()
    return out


def bench_rtf(piper: PiperEngine) -> float:
    texts = [FIRST, REST.strip(), "Stay with us, because after the break we have the sports round up."]
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
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    n = 60 if args.quick else 200

    t0 = time.perf_counter()
    piper = PiperEngine()
    print(f"piper voice load + warm-up: {time.perf_counter() - t0:.2f} s")
    for fragment, label in ((None, "whole first sentence"), (6, "first sentence cut after 4 words (default)")):
        lat = bench_first_audio(piper, 7, fragment)
        print(f"text in -> first speech sample ready, 8-word first sentence, streamed tokens, {label}: "
              f"median {statistics.median(lat) * 1000:.0f} ms, min {min(lat) * 1000:.0f}, "
              f"max {max(lat) * 1000:.0f} (target <= 200 ms)")
    print(f"piper real-time factor (1 intra-op thread): {bench_rtf(piper):.3f}")

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
