"""The studio preview feed with a fake clock: nothing kept or encoded while nobody watches,
at most max_fps pictures kept while a page does, one JPEG per kept picture."""

import io

import numpy as np
from PIL import Image

from broadcaster.render.yuv import rgb_to_yuv420
from broadcaster.service.preview import PreviewFeed
from broadcaster.stages import Tick


def tick(index, frame):
    return Tick(index, None, 0.0, frame is not None, False, 0.0, frame)


def test_an_unwatched_broadcast_pays_nothing_and_a_watched_one_gets_fresh_jpegs():
    now = [0.0]
    feed = PreviewFeed(max_fps=4, watch_s=3, clock=lambda: now[0])
    red = np.zeros((48, 64, 3), np.uint8)
    red[..., 0] = 255
    frame = rgb_to_yuv420(red)
    for i in range(40):                       # two seconds at 20 fps, nobody watching
        now[0] = i / 20
        feed.on_tick(tick(i, frame))
    assert feed.jpeg() is None and feed.encoded == 0

    kept = []
    for i in range(40, 80):                   # a page watches (jpeg() above marked it)
        now[0] = i / 20
        feed.on_tick(tick(i, frame if i % 2 else None))
        picture = feed.jpeg()
        if picture is not None and (not kept or kept[-1] != picture[0]):
            kept.append(picture[0])
    assert 7 <= len(kept) <= 9, kept          # ~4 per second over two seconds
    assert feed.encoded == len(kept)          # each kept picture encoded once, however often asked
    index, data = feed.jpeg()
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert rgb.shape == (48, 64, 3) and rgb[..., 0].mean() > 230 and rgb[..., 2].mean() < 30

    now[0] += 10                              # the page went away: frames are no longer kept
    feed.on_tick(tick(999, frame))
    assert feed.jpeg()[0] == index
