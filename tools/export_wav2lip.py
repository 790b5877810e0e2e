"""Convert an original Wav2Lip checkpoint (wav2lip.pth or wav2lip_gan.pth from the
Rudrabha/Wav2Lip release) to the ONNX model the wav2lip anchor runs, and check the export.

The checkpoints hold {"state_dict": ..., "optimizer": ..., "global_step": ..., ...}, their keys
prefixed `module.` when they were trained under DataParallel; a bare state dict loads too.
The weights go into the same architecture as tools/export_wav2lip_random.py, are exported
with a dynamic batch axis, and ONNX Runtime's output is compared with torch's on random
inputs: the max abs difference is printed and must be under --tolerance (1e-4), else the exit
status is 1. torch is needed (the `test` extra); the checkpoint is read with
torch.load(weights_only=True), so a pickle in it cannot run code.
Run: python tools/export_wav2lip.py CHECKPOINT.pth OUT.onnx
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from export_wav2lip_random import Wav2Lip, export_model  # noqa: E402

TOLERANCE = 1e-4


class CheckpointError(ValueError):
    """A checkpoint that is not Wav2Lip's; the message says why."""


def load_state_dict(path: Path) -> dict:
    """The model's weights as the original checkpoints store them, `module.` prefixes removed."""
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike
        raise CheckpointError(f"{path}: not a loadable torch checkpoint ({exc.__class__.__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    state = data.get("state_dict", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: holds no state dict of tensors (expected a 'state_dict' key)")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def build(state: dict, source: Path) -> Wav2Lip:
    model = Wav2Lip()
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:          # a tensor of the wrong shape
        raise CheckpointError(f"{source}: not Wav2Lip's weights: {str(exc).splitlines()[-1].strip()}") from None
    if missing or unexpected:
        raise CheckpointError(f"{source}: not Wav2Lip's weights: {len(missing)} missing "
                              f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})"
                              " - a SyncNet or a different model?")
    return model.eval()


def max_difference(model: Wav2Lip, onnx_path: Path, batch: int = 4, seed: int = 0) -> float:
    """Max abs difference between torch and ONNX Runtime (CPU) on random inputs."""
    import onnxruntime as ort
    gen = torch.Generator().manual_seed(seed)
    mel = torch.randn(batch, 1, 80, 16, generator=gen)
    faces = torch.rand(batch, 6, 96, 96, generator=gen)
    with torch.no_grad():
        want = model(mel, faces).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"mel": mel.numpy(), "faces": faces.numpy()})
    return float(np.abs(got - want).max())


def convert(checkpoint: Path, out: Path) -> float:
    model = build(load_state_dict(checkpoint), checkpoint)
    export_model(model, out)
    return max_difference(model, out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--tolerance", type=float, default=TOLERANCE)
    args = ap.parse_args()
    try:
        diff = convert(args.checkpoint, args.out)
    except CheckpointError as exc:
        print(f"export_wav2lip: {exc}", file=sys.stderr)
        return 2
    verdict = "ok" if diff < args.tolerance else f"TOO LARGE (must be under {args.tolerance:g})"
    print(f"exported {args.out} ({args.out.stat().st_size / 1e6:.1f} MB); ONNX vs torch max abs "
          f"difference {diff:.2e}: {verdict}")
    return 0 if diff < args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
