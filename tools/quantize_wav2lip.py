"""Quantize a Wav2Lip ONNX export to int8 for a CPU, and say how far its output moves.

On a CPU the model is almost all of the anchor's cost (tools/bench_anchor.py: about 97% of
the worker's time is Conv and ConvTranspose). ONNX Runtime's int8 kernels (static QDQ
quantization, weights per channel) run it about twice as fast on a CPU with AVX-512 VNNI,
at the price of a slightly different mouth, so it is opt-in: this tool writes a second
model and the scene's `anchor.model` names it.

Calibration uses what the anchor will see: face crops of the presenter clip (--clip, the same
crops the anchor feeds the model) and mel windows of speech (--wav, else the default Piper
voice reading a sentence). Half the (face, mel) pairs calibrate, the other half measure: the
max and mean abs difference of the predicted faces against the float model (0..255) are
printed, with the float output's spread for scale, and CPU ms per face of both. The exit status
is 1 when the mean difference exceeds --max-mean-diff. Needs the `onnx` package.
Run: python tools/quantize_wav2lip.py wav2lip_gan.onnx wav2lip_gan.int8.onnx --clip presenter.mp4
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # as broadcaster/__init__.py, before numpy loads

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BROADCAST_RATE = 48_000
MAX_MEAN_DIFF = 2.0          # of 255: about what H.264 at the broadcast's rates changes anyway


def news_speech(seconds: float) -> np.ndarray:
    """The default Piper voice reading news at 48 kHz, repeated to `seconds`."""
    from broadcaster.tts import PiperEngine, prepare_speech
    piper = PiperEngine()
    try:
        text = ("Good evening and welcome to the late news. Tonight we look at the weather, the "
                "markets, and a story about a very patient cat who waited for the bus.")
        s = piper.synthesize(text)
        pcm = prepare_speech(s.pcm, s.rate)
    finally:
        piper.close()
    reps = int(np.ceil(seconds * BROADCAST_RATE / len(pcm)))
    return np.tile(pcm, reps)[:int(seconds * BROADCAST_RATE)]


def read_wav(path: Path) -> np.ndarray:
    """A sound file (any format FFmpeg reads) as 48 kHz mono float32; ValueError naming the
    file when it cannot be read."""
    from broadcaster.errors import ConfigError
    from broadcaster.media.mixer import load_bed
    try:
        return load_bed(path, BROADCAST_RATE, max_s=60.0).mean(axis=1)
    except ConfigError as exc:
        raise ValueError(f"--wav {path}: {exc.message}") from None


def model_inputs(model: Path, clip: Path, speech: np.ndarray, fps: float = 20.0,
                 size: tuple[int, int] = (854, 480)) -> tuple[np.ndarray, np.ndarray]:
    """(mels (N, 1, 80, 16), faces (N, 6, 96, 96)): the clip's face crops as the anchor makes
    them, each with the speech's mel window for that frame."""
    from broadcaster.avatar.video_anchor import VideoLoopAnchor
    from broadcaster.avatar.wav2lip_mel import SAMPLE_RATE, mel_chunks, melspectrogram
    from broadcaster.tts.levels import resample_to_broadcast
    anchor = VideoLoopAnchor(size[0], size[1], video=clip, model=model, fps=fps, prefer_gpu=False)
    try:
        faces = [anchor.model_face(i) for i in range(len(anchor.boxes))]
    finally:
        anchor.close()
    mels = mel_chunks(melspectrogram(resample_to_broadcast(speech, BROADCAST_RATE, SAMPLE_RATE)), fps)
    n = min(len(mels), 4 * len(faces))
    pairs = [(mels[i], faces[i % len(faces)]) for i in range(n)]
    return (np.stack([m for m, _ in pairs])[:, None].astype(np.float32),
            np.stack([f for _, f in pairs]).astype(np.float32))


def quantize(model: Path, out: Path, mels: np.ndarray, faces: np.ndarray) -> Path:
    """Static QDQ int8 (uint8 activations, int8 weights per channel), calibrated on the pairs."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Pairs(CalibrationDataReader):
        def __init__(self) -> None:
            self.at = 0

        def get_next(self):
            if self.at >= len(mels):
                return None
            self.at += 1
            return {"mel": mels[self.at - 1:self.at], "faces": faces[self.at - 1:self.at]}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(out), Pairs(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def compare(model: Path, quantized: Path, mels: np.ndarray, faces: np.ndarray, batch: int = 4) -> dict:
    """Output difference (0..255) and CPU ms per face of the float and the int8 model."""
    from broadcaster.avatar.onnx_session import open_session
    out, cpu = {}, {}
    for name, path in (("float", model), ("int8", quantized)):
        session = open_session(path, prefer_gpu=False, purpose="wav2lip")
        session.run(None, {"mel": mels[:batch], "faces": faces[:batch]})       # warm up
        started, preds = time.process_time(), []
        for i in range(0, len(mels), batch):
            preds.append(session.run(None, {"mel": mels[i:i + batch], "faces": faces[i:i + batch]})[0])
        cpu[name] = (time.process_time() - started) / len(mels) * 1e3
        out[name] = np.concatenate(preds) * 255.0
    diff = np.abs(out["int8"] - out["float"])
    return {"max": float(diff.max()), "mean": float(diff.mean()), "spread": float(out["float"].std()),
            "float_ms": cpu["float"], "int8_ms": cpu["int8"], "faces": len(mels)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="the float Wav2Lip ONNX export")
    ap.add_argument("out", type=Path, help="where the int8 model goes")
    ap.add_argument("--clip", type=Path, required=True, help="the presenter clip (calibration faces)")
    ap.add_argument("--wav", type=Path, help="speech for the mel windows (default: Piper reads news)")
    ap.add_argument("--max-mean-diff", type=float, default=MAX_MEAN_DIFF)
    args = ap.parse_args()
    try:
        speech = read_wav(args.wav) if args.wav else news_speech(8.0)
        mels, faces = model_inputs(args.model, args.clip, speech)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:   # the clip's, the model's, the wav's
        print(f"quantize_wav2lip: {exc}", file=sys.stderr)
        return 2
    half = len(mels) // 2
    quantize(args.model, args.out, mels[:half], faces[:half])
    r = compare(args.model, args.out, mels[half:], faces[half:])
    ok = r["mean"] <= args.max_mean_diff
    print(f"int8 {args.out} ({args.out.stat().st_size / 1e6:.1f} MB): output vs float on {r['faces']} "
          f"held-out faces: max abs difference {r['max']:.2f}, mean {r['mean']:.3f} of 255 (float "
          f"output spread {r['spread']:.2f}); CPU {r['float_ms']:.1f} -> {r['int8_ms']:.1f} ms per face "
          f"(x{r['int8_ms'] / r['float_ms']:.2f}); load average {os.getloadavg()[0]:.2f}: "
          + ("ok" if ok else f"TOO DIFFERENT (mean must be at most {args.max_mean_diff:g})"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
