"""Benchmark the video-loop Wav2Lip anchor against today's still-portrait live path, per ONNX
Runtime execution provider, at 854x480 and 1280x720 (the anchor fills the frame). It prints:

- baseline: the still-portrait live path (Wav2LipAnchor.render: mel, batch-1 model call and
  paste on the media thread), frames/s and CPU ms per frame, of which outside the model;
- video loop, worker: lip frames rendered ahead in batches (--batch) with the mouth every
  --every slots (default: 1 on a GPU, fps//10 on a CPU): slots/s it covers, CPU ms per slot,
  of which outside the model; ratios against the baseline;
- video loop, media thread: what a slot costs the media loop to get the anchor's picture
  (already in yuv420p; the baseline's figure includes the compositor's conversion), ms;
- the clip's memory: bytes the anchor holds per clip frame, and the peak while the clip loads
  (tracemalloc);
- the model per face: the whole exported graph against the one the anchor runs, trimmed to
  the rows of the mouth (lower_half.py), CPU ms, and their largest difference there;
- the paste of one predicted mouth: the full-box float32 paste (the baseline) against the
  mouth-region paste (mouth_paste.py), CPU ms;
- with --realtime (CPU): a paced 854x480@20 broadcast to a file with 8 s of speech: slots
  repeated by the media loop, anchor slots late, distinct mouth pictures on air per second of
  audible speech (pauses inside a line show the clip's own mouth: no picture is due there);
- with --line-starts (CPU): short lines after silence on a paced 854x480@20 broadcast, each
  line held by the mixer until its first mouth is ready, against a baseline run in which it
  plays at once: lines whose first audible slot shows a rendered mouth, late slots in the
  lines' first half second, and how long the lines were held;
- with --int8: each video-loop case again with the model quantized by
  tools/quantize_wav2lip.py (calibrated on the presenter and the speech), in the same run.
The lines timing the model and the broadcast end with the 1-minute load average: the CPU
may be shared.

The model is Wav2Lip's architecture with random weights (tools/export_wav2lip_random.py, needs
torch) unless --model names an export; the presenter is the drawn face of the tests
(tests/support/presenter.py). GPU figures need onnxruntime-gpu and a GPU (see README).
Run: PYTHONPATH=. python tools/bench_anchor.py [--model M.onnx] [--frames 40] [--realtime]
     [--line-starts] [--int8]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # as broadcaster/__init__.py, before numpy loads

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import onnxruntime as ort  # noqa: E402

from broadcaster.avatar import PuppetAnchor, Wav2LipAnchor  # noqa: E402
from broadcaster.avatar.video_anchor import VideoLoopAnchor, load_presenter  # noqa: E402
from broadcaster.render.yuv import YuvaPatch  # noqa: E402
from tests.support.presenter import presenter_frames, random_wav2lip, write_clip  # noqa: E402
from tools.quantize_wav2lip import model_inputs, news_speech, quantize  # noqa: E402

SIZES = ((854, 480), (1280, 720))
RATE = 48_000


class ModelClock:
    """Wraps a model's infer to add up the CPU time spent inside it (its calling thread)."""

    def __init__(self, infer):
        self.infer, self.cpu_s, self.faces = infer, 0.0, 0

    def __call__(self, mels, faces):
        started = time.thread_time()
        out = self.infer(mels, faces)
        self.cpu_s += time.thread_time() - started
        self.faces += len(mels)
        return out


def bench_still(model: Path, portrait: Path, w: int, h: int, fps: int, speech: np.ndarray,
                n: int, gpu: bool) -> dict:
    anchor = Wav2LipAnchor(w, h, image=portrait, model=model, fps=fps, prefer_gpu=gpu,
                           face_box=[224, 150, 544, 520])
    clock = ModelClock(anchor.model.infer)
    anchor.model.infer = clock
    spf = RATE // fps
    for i in range(3):                                   # warm up
        anchor.render(i, speech[i * spf:(i + 1) * spf])
    clock.cpu_s = 0.0
    cpu0, t0 = time.process_time(), time.perf_counter()
    for i in range(3, 3 + n):
        rgba = anchor.render(i, speech[i * spf:(i + 1) * spf])
        YuvaPatch.from_rgba(rgba)                        # what the compositor does with it
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    anchor.close()
    return {"fps": n / wall, "cpu_ms": cpu / n * 1e3, "outside_ms": (cpu - clock.cpu_s) / n * 1e3}


def bench_video(model: Path, clip: Path, w: int, h: int, fps: int, speech: np.ndarray, n: int,
                gpu: bool, batch: int, every: int | None) -> dict:
    anchor = VideoLoopAnchor(w, h, video=clip, model=model, fps=fps, prefer_gpu=gpu,
                             batch_size=batch, mouth_every=every, lookahead_s=(n + 8) / fps)
    clock = ModelClock(anchor.model.infer)
    anchor.ahead._infer = clock
    spf = RATE // fps
    # warm up: one batch, then the speech to measure from a fresh stream position
    anchor.speech_queued(speech[:spf * 4], 0, 0)
    while anchor.ahead.take(0) is None:
        time.sleep(0.002)
    anchor.reset()
    base = spf * 8
    clock.cpu_s, clock.faces = 0.0, 0
    anchor.ahead.face_s = 0.0     # measure throughput: no key is skipped as already late
    cpu0, t0 = time.process_time(), time.perf_counter()
    anchor.speech_queued(speech[:spf * (n + 8)], base, 0)
    last = 8 + n - 1
    while anchor.ahead.take(last) is None:
        time.sleep(0.002)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    out = {"fps": n / wall, "cpu_ms": cpu / n * 1e3, "outside_ms": (cpu - clock.cpu_s) / n * 1e3,
           "every": anchor.mouth_every, "faces": clock.faces}
    # the media thread's share: take the finished picture (already in yuv420p)
    loop0 = anchor.ahead._offset or 0
    cpu0 = time.thread_time()
    for k in range(8, 8 + n):
        anchor.render_slot(k + loop0, speech[(k - 8) * spf:(k - 7) * spf], k * spf)
    out["media_ms"] = (time.thread_time() - cpu0) / n * 1e3
    anchor.close()
    return out


def clip_held(model: Path, clip: Path, w: int, h: int, fps: int) -> tuple[float, int, float]:
    """Bytes the video-loop anchor holds per clip frame (tracemalloc: numpy's arrays), frames,
    and the peak while its clip loads (bytes, the clip's loader alone)."""
    import gc
    import tracemalloc
    VideoLoopAnchor(w, h, video=clip, model=model, fps=fps, prefer_gpu=False).close()   # boxes cached
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        anchor = VideoLoopAnchor(w, h, video=clip, model=model, fps=fps, prefer_gpu=False)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    frames = len(anchor.patches)
    anchor.close()
    tracemalloc.start()        # the clip's loader alone: the model peaks on its own
    try:
        before = tracemalloc.get_traced_memory()[0]
        load_presenter(clip, fps, w, h, None, anchor._pad)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return held / frames, frames, peak


def paced_broadcast(model: Path, folder: Path, fps: int, every: int | None, duration_s: float):
    """A paced 854x480 broadcast of the presenter to a file, not started: (it, its ticks)."""
    import yaml

    from broadcaster.config import load_config
    from broadcaster.media.pipeline import Broadcast
    from broadcaster.scene import load_scene
    w, h = SIZES[0]
    clip = folder / "rt_presenter.mp4"
    if not clip.exists():
        write_clip(clip, presenter_frames(w, h, 48)[0], fps)
    scenes = folder / "scenes"
    scenes.mkdir(exist_ok=True)
    options = f"\n  options: {{mouth_every: {every}}}" if every else ""
    (scenes / "rt.yaml").write_text(
        f"name: rt\ncanvas: {{width: {w}, height: {h}, fps: {fps}}}\nbackground: {{color: '#000000'}}\n"
        f"anchor:\n  x: 0\n  y: 0\n  width: {w}\n  height: {h}\n  renderer: wav2lip\n  model: {model}\n"
        f"  video: {clip}{options}\naudio: {{bed: silence}}\n")
    cfg = folder / "rt.yaml"
    out = folder / f"rt-{time.monotonic_ns()}.mkv"
    cfg.write_text(yaml.safe_dump({"scenes_dir": str(scenes), "scene": "rt", "output": {"url": str(out)},
                                   "control": {"enabled": False}}))
    ticks = []
    broadcast = Broadcast(load_config(cfg), load_scene(scenes / "rt.yaml"), duration_s=duration_s,
                          on_tick=ticks.append)
    return broadcast, ticks


def line_starts(model: Path, folder: Path, fps: int, speech: np.ndarray, every: int | None,
                hold: bool, lines: int = 6) -> dict:
    """Short lines after silence on a paced 854x480 broadcast, with the mixer's start gate
    (hold: the line waits for its first mouth) or without it (the line plays at once): how
    many lines show a rendered mouth on their first audible slot, late slots in each line's
    first half second, and how long the lines were held (ms, from the mixer)."""
    line_s, gap_s = 1.2, 0.6
    broadcast, ticks = paced_broadcast(model, folder, fps, every, 1.0 + lines * (line_s + gap_s + 0.3))
    if not hold:
        broadcast.mixer.set_start_gate(None)
    silence = 10 ** (-50 / 20)
    spf = RATE // fps
    pieces = []
    for i in range(lines):    # each line starts on an audible slot
        at = int(i * 1.7 * RATE)
        while float(np.sqrt(np.mean(speech[at:at + spf] ** 2))) <= silence:
            at += spf // 4
        pieces.append(speech[at:at + int(line_s * RATE)])

    def speak():
        for i, pcm in enumerate(pieces):
            while (len(ticks) < fps or not broadcast.mixer.idle()) and not broadcast.finished:
                time.sleep(0.005)
            quiet_from = len(ticks)
            while len(ticks) < quiet_from + int(gap_s * fps) and not broadcast.finished:
                time.sleep(0.005)
            broadcast.mixer.push(pcm, f"line {i}", i + 1)

    threading.Thread(target=speak, daemon=True).start()
    broadcast.start()
    broadcast.join()
    first_ok, early_late, early = 0, 0, 0
    starts = [i for i, t in enumerate(ticks) if t.chunk.started]
    for start in starts:
        audible = [t for t in ticks[start:start + fps // 2] if t.chunk.speech_pos is not None
                   and float(np.sqrt(np.mean(t.chunk.speech ** 2))) > silence and t.frame is not None]
        first_ok += bool(audible) and not audible[0].anchor_late
        early += len(audible)
        early_late += sum(t.anchor_late for t in audible)
    holds = [held * 1e3 / RATE for held in broadcast.mixer.start_holds] or [0.0]
    return {"lines": len(starts), "first_ok": first_ok, "early": early, "early_late": early_late,
            "hold_mean": float(np.mean(holds)), "hold_max": float(np.max(holds)),
            "every": broadcast.anchor.mouth_every}


def realtime(model: Path, folder: Path, fps: int, speech: np.ndarray, every: int | None) -> dict:
    """A paced 854x480 broadcast to a file: does the anchor keep it real time?"""
    broadcast, ticks = paced_broadcast(model, folder, fps, every, 12.0)
    anchor = broadcast.anchor
    taken = []                     # what each slot with audible speech got from the worker
    take = anchor.ahead.take

    def recording_take(key):
        item = take(key)
        taken.append(item)
        return item

    anchor.ahead.take = recording_take

    def speak():
        while len(ticks) < 2 * fps and not broadcast.finished:
            time.sleep(0.01)
        broadcast.mixer.push(speech[:8 * RATE], "news", 1)

    threading.Thread(target=speak, daemon=True).start()
    cpu0 = time.process_time()
    broadcast.start()
    broadcast.join()
    cpu = time.process_time() - cpu0
    speaking = [t for t in ticks if t.chunk.speech_pos is not None]
    mouths = {id(item.mouth) for item in taken if item is not None and item.mouth is not None}
    return {"slots": len(ticks), "repeated": broadcast.stats.frames_repeated,
            "late": sum(t.anchor_late for t in ticks), "speech_slots": len(speaking),
            "audible": len(taken), "mouth_per_s": len(mouths) / max(1e-9, len(taken) / fps),
            "cores": cpu / (len(ticks) / fps), "every": anchor.mouth_every}


def bench_trim(model: Path, batch: int, n: int = 6) -> dict:
    """CPU ms per face of the whole model (the session as exported) against the one
    Wav2LipModel runs (trimmed to the mouth's rows, lower_half.py), and the largest
    difference between their lower halves."""
    from broadcaster.avatar.wav2lip import Wav2LipModel
    trimmed = Wav2LipModel(model, prefer_gpu=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    whole = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    mels = rng.standard_normal((batch, 80, 16)).astype(np.float32)
    faces = rng.random((batch, 6, 96, 96)).astype(np.float32)
    runs = {"whole": lambda: whole.run(None, {trimmed.mel_name: mels[:, None], trimmed.face_name: faces})[0],
            "trimmed": lambda: trimmed.infer(mels, faces)}
    out = {}
    for name, run in runs.items():
        out[name + "_pred"] = run()
        started = time.thread_time()
        for _ in range(n):
            run()
        out[name] = (time.thread_time() - started) / n / batch * 1e3
    out["diff"] = float(np.abs(out["whole_pred"][:, :, 48:] - out["trimmed_pred"][:, :, 48:]).max())
    out["rows"] = trimmed.rows_computed
    return out


def full_box_paste(pred: np.ndarray, frame: np.ndarray, box, mask: np.ndarray) -> None:
    """The paste before mouth_paste.py, as the baseline: the whole predicted face resized in
    float32 and blended over the whole box (its upper half through a zero mask)."""
    import cv2
    x0, y0, x1, y1 = box
    rgb = (pred.transpose(1, 2, 0)[..., ::-1] * 255.0).clip(0, 255).astype(np.float32)
    rgb = cv2.resize(rgb, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    region = frame[y0:y1, x0:x1, :3].astype(np.float32)
    frame[y0:y1, x0:x1, :3] = (rgb * mask + region * (1.0 - mask) + 0.5).astype(np.uint8)


def bench_paste(w: int, h: int, n: int = 100) -> tuple[float, float]:
    """CPU ms per paste of one predicted mouth: full-box float paste vs the mouth region."""
    from broadcaster.avatar.mouth_paste import MouthPaster, mouth_region, prediction_mouth
    box = (int(w * 0.36), int(h * 0.2), int(w * 0.64), int(h * 0.8))
    frame = np.zeros((h, w, 4), np.uint8)
    pred = np.random.default_rng(0).random((3, 96, 96), dtype=np.float32)
    bh, bw = box[3] - box[1], box[2] - box[0]
    mask = np.zeros((bh, bw, 1), np.float32)
    mask[bh - (mouth_region(box)[3] - mouth_region(box)[1]):] = 1.0
    paster = MouthPaster()
    out = []
    for fn in (lambda: full_box_paste(pred, frame, box, mask),
               lambda: paster.paste(prediction_mouth(pred), frame, box)):
        fn()
        started = time.thread_time()
        for _ in range(n):
            fn()
        out.append((time.thread_time() - started) / n * 1e3)
    return out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a Wav2Lip ONNX export; default: a random-weight one (needs torch)")
    ap.add_argument("--frames", type=int, default=40, help="slots measured per case")
    ap.add_argument("--fps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8, help="faces per ONNX call in the worker")
    ap.add_argument("--every", type=int, default=None, help="mouth every N slots (default: by provider)")
    ap.add_argument("--realtime", action="store_true", help="also run the paced 854x480 broadcast (CPU)")
    ap.add_argument("--line-starts", action="store_true",
                    help="also run short lines after silence on a paced broadcast, held for their "
                         "first mouth and not (CPU)")
    ap.add_argument("--int8", action="store_true",
                    help="also quantize the model (tools/quantize_wav2lip.py) and run each case with it")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tmp = tempfile.TemporaryDirectory()
    folder = Path(tmp.name)
    model = Path(args.model) if args.model else random_wav2lip(folder)
    import cv2
    portrait = folder / "anchor.png"
    still = PuppetAnchor(768, 768, idle_motion=False).render_params(np.zeros(7, np.float32))
    cv2.imwrite(str(portrait), cv2.cvtColor(still, cv2.COLOR_RGBA2BGRA))
    speech = news_speech((args.frames + 40) / args.fps + 9)
    models = [("float", model)]
    if args.int8:
        frames, _ = presenter_frames(*SIZES[0], 48)
        clip = write_clip(folder / "calibration.mp4", frames, args.fps)
        mels, faces = model_inputs(model, clip, speech, args.fps, SIZES[0])
        models.append(("int8", quantize(model, folder / "wav2lip.int8.onnx", mels[::2], faces[::2])))
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    for provider in providers:
        gpu = provider != "CPUExecutionProvider"
        for w, h in SIZES:
            frames, _ = presenter_frames(w, h, 48)
            clip = write_clip(folder / f"presenter-{w}x{h}.mp4", frames, args.fps)
            if provider == providers[-1]:
                per_frame, n_clip, peak = clip_held(model, clip, w, h, args.fps)
                print(f"{w}x{h} clip held by the video anchor: {per_frame / 2**20:.2f} MiB per frame "
                      f"({n_clip} frames; a yuv420p frame is {w * h * 1.5 / 2**20:.2f} MiB); peak "
                      f"while loading {peak / 2**20:.1f} MiB, x{peak / (per_frame * n_clip):.2f} "
                      f"what is held")
            still_r = bench_still(model, portrait, w, h, args.fps, speech, args.frames, gpu)
            print(f"{provider} {w}x{h} baseline still-portrait live path: {still_r['fps']:.1f} frames/s, "
                  f"{still_r['cpu_ms']:.1f} ms CPU/frame ({still_r['outside_ms']:.1f} outside the model)"
                  f" [load {os.getloadavg()[0]:.2f}]")
            for name, path in models:
                video_r = bench_video(path, clip, w, h, args.fps, speech, args.frames, gpu, args.batch, args.every)
                print(f"{provider} {w}x{h} video loop ({name} model), worker (batch {args.batch}, mouth every "
                      f"{video_r['every']}): {video_r['fps']:.1f} slots/s (x{video_r['fps'] / still_r['fps']:.2f}), "
                      f"{video_r['cpu_ms']:.1f} ms CPU/slot (x{video_r['cpu_ms'] / still_r['cpu_ms']:.2f}; "
                      f"{video_r['outside_ms']:.1f} outside the model, x"
                      f"{video_r['outside_ms'] / still_r['outside_ms']:.2f}), {video_r['faces']} faces"
                      f" [load {os.getloadavg()[0]:.2f}]")
                print(f"{provider} {w}x{h} video loop ({name} model), media thread: "
                      f"{video_r['media_ms']:.2f} ms CPU/slot")
    for name, path in models:
        for batch in (1, args.batch):
            r = bench_trim(path, batch)
            print(f"CPUExecutionProvider model ({name}), batch {batch}: whole {r['whole']:.1f} ms CPU per face, "
                  f"trimmed to the mouth's rows ({r['rows'] * 100:.0f}% of the decoder's) {r['trimmed']:.1f} ms "
                  f"(x{r['trimmed'] / r['whole']:.2f}), lower half max abs difference {r['diff']:.1e}"
                  f" [load {os.getloadavg()[0]:.2f}]")
    for w, h in SIZES:
        before, after = bench_paste(w, h)
        print(f"paste of one mouth {w}x{h}: full-box float {before:.2f} ms CPU, mouth region "
              f"{after:.2f} ms (x{after / before:.2f})")
    if args.line_starts:
        for name, path in models:
            runs = {hold: line_starts(path, folder, args.fps, speech, args.every, hold) for hold in (False, True)}
            for hold, r in runs.items():
                print(f"line starts 854x480@{args.fps} CPU ({name} model), mouth every {r['every']}, "
                      f"{'line held for its first mouth' if hold else 'baseline, line plays at once'}: "
                      f"{r['first_ok']} of {r['lines']} lines show a rendered mouth on their first "
                      f"audible slot, {r['early_late']} of {r['early']} slots late in their first 0.5 s, "
                      f"held {r['hold_mean']:.0f} ms on average ({r['hold_max']:.0f} ms at most)"
                      f" [load {os.getloadavg()[0]:.2f}]")
    if args.realtime:
        for name, path in models:
            r = realtime(path, folder, args.fps, speech, args.every)
            print(f"realtime 854x480@{args.fps} CPU ({name} model), mouth every {r['every']}: {r['slots']} "
                  f"slots, {r['repeated']} repeated by the media loop, {r['late']} of {r['speech_slots']} "
                  f"speech slots late (the clip's frame shown), {r['mouth_per_s']:.1f} mouth pictures on "
                  f"air per second of audible speech ({r['audible']} slots), {r['cores']:.2f} cores (target: 0 repeated, >= 10 mouths/s)"
                  f" [load {os.getloadavg()[0]:.2f}]")
    tmp.cleanup()


if __name__ == "__main__":
    main()
