"""Author the built-in 2D puppet as a small torch module and export it to ONNX.

The model is pure geometry (no learned weights): it composes the anchor's head crop from the
portrait layers and seven per-frame parameters, with smooth analytic masks for the mouth and the
eyelids and one affine GridSample for head motion. The layers and the crop box are inputs, so
the model is tiny and works at any resolution. torch is needed only here; runtime is onnxruntime.

Inputs:  layers (5, 4, H, W) float32 premultiplied RGBA in [0, 1], in the order
         body, head, lips, mouth_interior, lids, covering the crop box of the portrait canvas;
         params (7,) float32 = mouth_open [0,1], mouth_wide [-1,1], blink [0,1], breath [-1,1],
         head_dx [-1,1], head_dy [-1,1], head_tilt [-1,1];
         crop (4,) float32 = x0, y0, width, height of the crop in canvas pixels.
Output:  frame (H, W, 4) uint8 straight-alpha RGBA.
Run: python tools/build_puppet.py [--assets scenes/assets/anchor] [--snapshots sheet.png]
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

PARAM_NAMES = ["mouth_open", "mouth_wide", "blink", "breath", "head_dx", "head_dy", "head_tilt"]


def soft(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0.0, 1.0)


def over(dst: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """Premultiplied 'over' on (4, H, W)."""
    return src + dst * (1.0 - src[3:4])


class Puppet(nn.Module):
    def __init__(self, geometry: dict) -> None:
        super().__init__()
        self.g = geometry

    def forward(self, layers: torch.Tensor, params: torch.Tensor, crop: torch.Tensor) -> torch.Tensor:
        g = self.g
        h, w = layers.shape[2], layers.shape[3]
        s = crop[2] / w  # canvas px per output px: masks get one-output-pixel soft edges
        xs = crop[0] + (torch.arange(w, dtype=torch.float32) + 0.5) * s
        ys = crop[1] + (torch.arange(h, dtype=torch.float32) + 0.5) * (crop[3] / h)
        X = xs.reshape(1, -1)
        Y = ys.reshape(-1, 1)
        body, head, lips, interior, lids = layers[0], layers[1], layers[2], layers[3], layers[4]
        mouth_open = params[0].clamp(0.0, 1.0)
        wide = params[1].clamp(-1.0, 1.0)
        blink = params[2].clamp(0.0, 1.0)
        breath, hdx, hdy, tilt = params[3], params[4], params[5], params[6]

        # --- mouth: lips lens + opening that drops with the jaw, corners curved up (smile)
        m = g["mouth"]
        a = m["half_w"] * (1.0 + 0.22 * wide - 0.14 * mouth_open)
        b = m["max_open"] * mouth_open
        xr = (X - m["cx"]) / a
        yr = Y - m["cy"] + m["smile"] * xr * xr - 0.35 * b
        d_in = torch.sqrt(xr * xr + (yr / (b + 1e-3)) ** 2)
        m_in = soft((1.0 - d_in) * torch.minimum(a, b) / s + 0.5) * soft(b / s)
        a_out = a + 4.0
        b_out = b + m["lip"]
        xo = (X - m["cx"]) / a_out
        d_out = torch.sqrt(xo * xo + (yr / b_out) ** 2)
        m_out = soft((1.0 - d_out) * b_out / s + 0.5)
        m_seam = soft(1.0 - yr.abs() / (1.6 * s + 0.6)) * soft((1.0 - xr.abs()) * a / s) * soft(1.0 - b / 3.0)
        face = over(head, lips * m_out)
        face = over(face, interior * m_in)
        seam = torch.tensor(g["lip_seam_color"], dtype=torch.float32).reshape(3, 1, 1)
        face = over(face, torch.cat([seam * m_seam, m_seam.unsqueeze(0)], 0))

        # --- eyelids close over the eyes; a lash line rides on the lid edge
        m_lid = torch.zeros_like(X * Y)
        m_lash = torch.zeros_like(X * Y)
        for cx, cy, rx, ry in g["eyes"]:
            rx2, ry2 = rx + 5.0, ry + 5.0
            dx = (X - cx) / rx2
            half = ry2 * torch.sqrt(soft(1.0 - dx * dx))
            m_eye = soft((1.0 - torch.sqrt(dx * dx + ((Y - cy) / ry2) ** 2)) * ry2 / s + 0.5)
            top = cy - half + blink * 1.55 * half  # upper lid comes down past the centre
            bottom = cy + half - blink * 0.45 * half  # lower lid rises a little to meet it
            m_lid = m_lid + m_eye * soft(soft((top - Y) / s) + soft((Y - bottom) / s))
            m_lash = m_lash + soft(1.0 - (Y - top).abs() / 2.2) * soft((1.0 - dx.abs() * 1.08) * rx2 / s)
        m_lash = m_lash * soft(blink * 3.0 - 0.3)
        face = over(face, lids * m_lid)
        lash = torch.tensor(g["lash_color"], dtype=torch.float32).reshape(3, 1, 1)
        face = over(face, torch.cat([lash * m_lash, m_lash.unsqueeze(0)], 0))

        # --- head motion: rotate/scale about the neck, translate; sample the composed head
        px, py = g["pivot"]
        theta = tilt * (g["head_tilt_deg"] * math.pi / 180.0)
        scale = 1.0 + g["breath_scale"] * breath
        tx = hdx * g["head_shift_px"]
        ty = hdy * g["head_shift_px"] - g["breath_rise_px"] * breath
        c, sn = torch.cos(theta), torch.sin(theta)
        ux = (X - px - tx) / scale
        uy = (Y - py - ty) / scale
        qx = px + c * ux + sn * uy  # inverse rotation
        qy = py - sn * ux + c * uy
        gx = 2.0 * (qx - crop[0]) / crop[2] - 1.0
        gy = 2.0 * (qy - crop[1]) / crop[3] - 1.0
        grid = torch.stack([gx.expand(h, w), gy.expand(h, w)], dim=-1).unsqueeze(0)
        moved = F.grid_sample(face.unsqueeze(0), grid, mode="bilinear", padding_mode="zeros",
                              align_corners=False)[0]

        out = over(body, moved)
        alpha = out[3:4]
        rgb = out[0:3] / alpha.clamp(min=1e-4)
        rgba = torch.cat([rgb.clamp(0.0, 1.0), alpha.clamp(0.0, 1.0)], 0)
        return (rgba * 255.0 + 0.5).permute(1, 2, 0).to(torch.uint8)


def export(assets: Path, out: Path) -> None:
    geometry = json.loads((assets / "geometry.json").read_text())
    model = Puppet(geometry).eval()
    x0, y0, x1, y1 = geometry["crop"]
    h, w = 96, 80
    layers = torch.rand(5, 4, h, w)
    params = torch.tensor([0.5, 0.0, 0.3, 0.0, 0.1, -0.1, 0.2])
    crop = torch.tensor([x0, y0, x1 - x0, y1 - y0], dtype=torch.float32)
    torch.onnx.export(
        model, (layers, params, crop), str(out), opset_version=17, dynamo=False,
        input_names=["layers", "params", "crop"], output_names=["frame"],
        dynamic_axes={"layers": {2: "h", 3: "w"}, "frame": {0: "h", 1: "w"}},
    )
    print(f"exported {out} ({out.stat().st_size} bytes)")


def snapshots(assets: Path, model: Path, out: Path) -> None:
    """Contact sheet through onnxruntime: closed, open, wide, round, blink, moved head."""
    import sys

    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from broadcaster.avatar.puppet import PuppetAnchor

    anchor = PuppetAnchor(480, 480, assets=assets, model=model, prefer_gpu=False)
    poses = [[0, 0, 0, 0, 0, 0, 0], [0.9, 0, 0, 0, 0, 0, 0], [0.5, 1, 0, 0, 0, 0, 0],
             [0.6, -1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0], [0.3, 0, 0.5, 1, 1, 1, 1]]
    sheet = Image.new("RGB", (480 * 3, 480 * 2), (120, 150, 190))
    for k, pose in enumerate(poses):
        frame = Image.fromarray(anchor.render_params(np.array(pose, np.float32)), "RGBA")
        sheet.paste(frame, ((k % 3) * 480, (k // 3) * 480), frame)
    sheet.save(out)
    print(f"snapshots: {out} (closed, open, wide, round, blink, moved)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assets", default=str(Path(__file__).resolve().parent.parent / "scenes/assets/anchor"))
    ap.add_argument("--out", default=None, help="default: <assets>/puppet.onnx")
    ap.add_argument("--snapshots", default=None, help="also write a contact sheet PNG here")
    args = ap.parse_args()
    assets = Path(args.assets)
    model = Path(args.out) if args.out else assets / "puppet.onnx"
    export(assets, model)
    if args.snapshots:
        snapshots(assets, model, Path(args.snapshots))


if __name__ == "__main__":
    main()
