"""Export a model with Wav2Lip's exact architecture and tensor shapes, random weights, to ONNX.

Why: users bring their own trained wav2lip / wav2lip_gan ONNX export; we cannot ship or download
those weights, but this model runs the same computation (same layers, same shapes), so the whole
adapter path can be tested and its speed measured. Its output is noise, not a mouth.
Inputs: mel (B, 1, 80, 16), faces (B, 6, 96, 96); output (B, 3, 96, 96) in [0, 1].
The layer list follows Rudrabha/Wav2Lip models/wav2lip.py. About 36M parameters (~140 MB).
Run: python tools/export_wav2lip_random.py OUT.onnx [--seed 0]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn


class Conv2d(nn.Module):
    def __init__(self, cin, cout, kernel_size, stride, padding, residual=False):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x):
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class Conv2dTranspose(nn.Module):
    def __init__(self, cin, cout, kernel_size, stride, padding, output_padding=0):
        super().__init__()
        self.conv_block = nn.Sequential(nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding),
                                        nn.BatchNorm2d(cout))
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv_block(x))


def _res(c, n):
    return [Conv2d(c, c, 3, 1, 1, residual=True) for _ in range(n)]


class Wav2Lip(nn.Module):
    def __init__(self):
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(Conv2d(6, 16, 7, 1, 3)),  # 96
            nn.Sequential(Conv2d(16, 32, 3, 2, 1), *_res(32, 2)),  # 48
            nn.Sequential(Conv2d(32, 64, 3, 2, 1), *_res(64, 3)),  # 24
            nn.Sequential(Conv2d(64, 128, 3, 2, 1), *_res(128, 2)),  # 12
            nn.Sequential(Conv2d(128, 256, 3, 2, 1), *_res(256, 2)),  # 6
            nn.Sequential(Conv2d(256, 512, 3, 2, 1), *_res(512, 1)),  # 3
            nn.Sequential(Conv2d(512, 512, 3, 1, 0), Conv2d(512, 512, 1, 1, 0)),  # 1
        ])
        self.audio_encoder = nn.Sequential(
            Conv2d(1, 32, 3, 1, 1), *_res(32, 2),
            Conv2d(32, 64, 3, (3, 1), 1), *_res(64, 2),
            Conv2d(64, 128, 3, 3, 1), *_res(128, 2),
            Conv2d(128, 256, 3, (3, 2), 1), *_res(256, 1),
            Conv2d(256, 512, 3, 1, 0), Conv2d(512, 512, 1, 1, 0),
        )
        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(Conv2d(512, 512, 1, 1, 0)),
            nn.Sequential(Conv2dTranspose(1024, 512, 3, 1, 0), *_res(512, 1)),  # 3
            nn.Sequential(Conv2dTranspose(1024, 512, 3, 2, 1, 1), *_res(512, 2)),  # 6
            nn.Sequential(Conv2dTranspose(768, 384, 3, 2, 1, 1), *_res(384, 2)),  # 12
            nn.Sequential(Conv2dTranspose(512, 256, 3, 2, 1, 1), *_res(256, 2)),  # 24
            nn.Sequential(Conv2dTranspose(320, 128, 3, 2, 1, 1), *_res(128, 2)),  # 48
            nn.Sequential(Conv2dTranspose(160, 64, 3, 2, 1, 1), *_res(64, 2)),  # 96
        ])
        self.output_block = nn.Sequential(Conv2d(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid())

    def forward(self, audio_sequences, face_sequences):
        audio_embedding = self.audio_encoder(audio_sequences)  # B, 512, 1, 1
        feats = []
        x = face_sequences
        for f in self.face_encoder_blocks:
            x = f(x)
            feats.append(x)
        x = audio_embedding
        for f in self.face_decoder_blocks:
            x = f(x)
            x = torch.cat((x, feats[-1]), dim=1)
            feats.pop()
        return self.output_block(x)


def export_model(model: nn.Module, out: Path) -> Path:
    """Export a Wav2Lip module (eval mode) to ONNX with a dynamic batch axis."""
    model = model.eval()
    mel = torch.randn(2, 1, 80, 16)
    faces = torch.rand(2, 6, 96, 96)
    with torch.no_grad():
        assert model(mel, faces).shape == (2, 3, 96, 96)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (mel, faces), str(out), opset_version=17, dynamo=False,
                      input_names=["mel", "faces"], output_names=["output"],
                      dynamic_axes={"mel": {0: "batch"}, "faces": {0: "batch"}, "output": {0: "batch"}})
    return out


def export(out: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    return export_model(Wav2Lip(), out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    path = export(Path(args.out), args.seed)
    print(f"exported {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
