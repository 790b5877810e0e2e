"""Draw the default anchor portrait as separate RGBA layers plus a geometry file.

Why separate layers: the puppet model (tools/build_puppet.py) animates the mouth, the eyelids and
the head on top of a static body, so each of those needs its own picture. Everything is drawn
with Pillow at 2x and downsampled for smooth edges. Output (scenes/assets/anchor/):
  body.png, head.png, lips.png, mouth_interior.png, lids.png, geometry.json
Run: python tools/draw_portrait.py [--out DIR]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SIZE = 768  # canvas, px
SS = 2  # supersampling factor

SKIN = (244, 204, 172, 255)
SKIN_SHADE = (226, 178, 146, 255)
LID = (238, 194, 162, 255)
HAIR = (74, 46, 32, 255)
HAIR_LIGHT = (104, 70, 50, 255)
JACKET = (40, 58, 102, 255)
JACKET_DARK = (28, 40, 74, 255)
SHIRT = (246, 246, 250, 255)
TIE = (178, 38, 52, 255)
IRIS = (86, 60, 36, 255)
LASH = (44, 28, 22, 255)

GEOMETRY = {
    "canvas": [SIZE, SIZE],
    "eyes": [[324, 338, 31, 20], [444, 338, 31, 20]],  # cx, cy, rx, ry
    "mouth": {"cx": 384, "cy": 452, "half_w": 40, "max_open": 24, "lip": 7, "smile": 6},
    "lash_color": [c / 255 for c in LASH[:3]],
    "lip_seam_color": [0.42, 0.14, 0.16],
    "pivot": [384, 540],  # the neck: head tilts and breathes about this point
    "head_shift_px": 8.0,  # head_dx/head_dy = +-1 moves this far
    "head_tilt_deg": 4.0,
    "breath_scale": 0.010,
    "breath_rise_px": 2.0,
    "crop_margin": 32,
}


def layer() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGBA", (SIZE * SS, SIZE * SS), (0, 0, 0, 0))
    return img, ImageDraw.Draw(img)


def s(*v: float) -> list[float]:
    return [x * SS for x in v]


def ell(d: ImageDraw.ImageDraw, cx: float, cy: float, rx: float, ry: float, fill, **kw) -> None:
    d.ellipse(s(cx - rx, cy - ry, cx + rx, cy + ry), fill=fill, **kw)


def finish(img: Image.Image) -> Image.Image:
    return img.resize((SIZE, SIZE), Image.LANCZOS)


def draw_body() -> Image.Image:
    img, d = layer()
    # neck with a shadow under the chin
    d.rounded_rectangle(s(336, 440, 432, 620), radius=30 * SS, fill=SKIN)
    ell(d, 384, 512, 50, 26, SKIN_SHADE)
    # shoulders / jacket
    d.rounded_rectangle(s(70, 590, 698, 900), radius=150 * SS, fill=JACKET)
    # shirt V and collar
    d.polygon(s(326, 584, 442, 584, 384, 700), fill=SHIRT)
    d.polygon(s(326, 584, 372, 620, 352, 650, 312, 600), fill=(230, 230, 238, 255))
    d.polygon(s(442, 584, 396, 620, 416, 650, 456, 600), fill=(230, 230, 238, 255))
    # tie
    d.polygon(s(372, 618, 396, 618, 402, 632, 366, 632), fill=TIE)
    d.polygon(s(368, 630, 400, 630, 410, 720, 384, 750, 358, 720), fill=TIE)
    # lapels
    d.polygon(s(300, 596, 326, 584, 384, 720, 340, 768, 290, 700), fill=JACKET_DARK)
    d.polygon(s(468, 596, 442, 584, 384, 720, 428, 768, 478, 700), fill=JACKET_DARK)
    d.line(s(384, 720, 384, 768), fill=JACKET_DARK, width=3 * SS)
    # pocket square
    d.polygon(s(520, 672, 560, 664, 566, 680, 522, 686), fill=SHIRT)
    return finish(img)


def draw_head() -> Image.Image:
    img, d = layer()
    # back hair (a bob that frames the face)
    ell(d, 384, 300, 186, 200, HAIR)
    d.rounded_rectangle(s(198, 300, 570, 520), radius=60 * SS, fill=HAIR)
    # ears
    for x in (234, 534):
        ell(d, x, 352, 22, 36, SKIN)
        ell(d, x, 352, 11, 22, SKIN_SHADE)
    # face: cheeks + jaw
    ell(d, 384, 318, 152, 170, SKIN)
    ell(d, 384, 410, 128, 116, SKIN)
    # blush
    blush = Image.new("RGBA", img.size, (0, 0, 0, 0))
    bd = ImageDraw.Draw(blush)
    for x in (296, 472):
        ell(bd, x, 412, 30, 17, (240, 128, 128, 90))
    img.alpha_composite(blush.filter(ImageFilter.GaussianBlur(9 * SS)))
    d = ImageDraw.Draw(img)
    # front hair: fringe with a side part, strands
    d.chord(s(206, 110, 562, 380), 180, 360, fill=HAIR)
    for x, y, r in ((250, 236, 30), (300, 238, 34), (352, 232, 32), (404, 226, 30), (456, 226, 34), (510, 236, 30)):
        ell(d, x, y, r, 22, HAIR)  # wavy fringe edge
    d.polygon(s(232, 245, 300, 180, 420, 168, 330, 250, 262, 300), fill=HAIR)
    d.polygon(s(420, 168, 540, 200, 552, 290, 520, 240, 450, 215), fill=HAIR)
    d.arc(s(260, 150, 470, 330), 200, 300, fill=HAIR_LIGHT, width=5 * SS)
    d.arc(s(380, 150, 560, 300), 230, 320, fill=HAIR_LIGHT, width=4 * SS)
    # eyebrows
    d.arc(s(286, 282, 364, 322), 200, 335, fill=HAIR, width=8 * SS)
    d.arc(s(404, 282, 482, 322), 205, 340, fill=HAIR, width=8 * SS)
    # eyes
    for cx, cy, rx, ry in GEOMETRY["eyes"]:
        ell(d, cx, cy, rx, ry, (252, 252, 252, 255))
        ell(d, cx + 2, cy + 1, 15, 15, IRIS)
        ell(d, cx + 2, cy + 1, 7, 7, (20, 14, 12, 255))
        ell(d, cx + 7, cy - 5, 4, 4, (255, 255, 255, 255))
        # upper lash line with a flick at the outer corner
        d.arc(s(cx - rx, cy - ry, cx + rx, cy + ry), 190, 350, fill=LASH, width=5 * SS)
        side = -1 if cx < 384 else 1
        d.line(s(cx + side * (rx - 4), cy - 8, cx + side * (rx + 6), cy - 14), fill=LASH, width=4 * SS)
    # nose
    d.arc(s(368, 360, 398, 410), 300, 80, fill=SKIN_SHADE, width=5 * SS)
    ell(d, 376, 404, 5, 3, SKIN_SHADE)
    ell(d, 394, 404, 5, 3, SKIN_SHADE)
    return finish(img)


def draw_mouth_interior() -> Image.Image:
    m = GEOMETRY["mouth"]
    cx, cy, w, o = m["cx"], m["cy"], m["half_w"], m["max_open"]
    img, d = layer()
    ell(d, cx, cy + 4, w + 10, o + 12, (96, 26, 36, 255))
    ell(d, cx, cy + o * 0.7, w * 0.62, o * 0.45, (214, 104, 112, 255))  # tongue
    d.rounded_rectangle(s(cx - w * 0.8, cy - o * 0.9, cx + w * 0.8, cy - o * 0.45), radius=4 * SS,
                        fill=(250, 250, 246, 255))  # upper teeth
    return finish(img)


def draw_lips() -> Image.Image:
    m = GEOMETRY["mouth"]
    cx, cy, w, o, lip = m["cx"], m["cy"], m["half_w"], m["max_open"], m["lip"]
    img, d = layer()
    ell(d, cx, cy, w + 20, o + lip + 14, (200, 94, 100, 255))  # base lip colour
    ell(d, cx, cy + o * 0.5 + 10, w * 0.9, o * 0.5 + 8, (214, 112, 116, 255))  # fuller lower lip
    ell(d, cx - 8, cy + o * 0.5 + 6, w * 0.3, 4, (232, 150, 150, 255))  # highlight
    d.rectangle(s(cx - w - 20, cy - o - lip - 14, cx + w + 20, cy - 4), fill=(186, 82, 90, 255))  # upper lip
    return finish(img).filter(ImageFilter.GaussianBlur(1.2))


def draw_lids() -> Image.Image:
    img, d = layer()
    for cx, cy, rx, ry in GEOMETRY["eyes"]:
        ell(d, cx, cy, rx + 5, ry + 5, LID)
    return finish(img)


def head_crop(head: Image.Image, margin: int) -> list[int]:
    x0, y0, x1, y1 = head.getchannel("A").getbbox()
    return [max(0, x0 - margin), max(0, y0 - margin), min(SIZE, x1 + margin), min(SIZE, y1 + margin)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "scenes/assets/anchor"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    head = draw_head()
    layers = {"body": draw_body(), "head": head, "lips": draw_lips(),
              "mouth_interior": draw_mouth_interior(), "lids": draw_lids()}
    for name, img in layers.items():
        img.save(out / f"{name}.png", optimize=True)
    geometry = dict(GEOMETRY, crop=head_crop(head, GEOMETRY["crop_margin"]),
                    layers=[f"{n}.png" for n in layers])
    (out / "geometry.json").write_text(json.dumps(geometry, indent=1))
    print(f"wrote {len(layers)} layers and geometry.json to {out}; crop {geometry['crop']}")


if __name__ == "__main__":
    main()
