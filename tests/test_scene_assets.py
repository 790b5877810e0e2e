"""Scene images and audio beds are read once, completely and within bounds, when the scene
loads: a damaged or oversized image and a bed that is not audio are one clear error (also
for `check`), and a long bed is cut instead of filling memory."""

import struct
import subprocess
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from broadcaster.errors import ConfigError
from broadcaster.media.mixer import MAX_BED_S, load_bed
from broadcaster.scene import load_scene
from tests.support.broadcaster_proc import run_broadcaster, write_config


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_corrupt_pixels(path):
    """Every chunk's CRC and the zlib stream are right, but each row's filter type is 7
    (PNG defines 0-4): the pixels cannot be decoded."""
    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    idat = zlib.compress((b"\x07" + b"\x80" * 64 * 3) * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
                     + _chunk(b"IEND", b""))
    return path


def png_declaring(path, width, height):
    """A few hundred bytes that declare width x height pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 100)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
                     + _chunk(b"IEND", b""))
    return path


def scene_with(tmp_path, text):
    path = tmp_path / "scene.yaml"
    path.write_text("canvas: {width: 640, height: 360, fps: 20}\n" + text)
    return path


@pytest.mark.parametrize("make,message", [
    (png_with_corrupt_pixels, "not a readable image"),
    (lambda p: png_declaring(p, 20000, 20000), "is too large"),
    (lambda p: png_declaring(p, 9000, 9000), "is too large"),
])
@pytest.mark.parametrize("where", [
    "background:\n  image: bad.png\n",
    "layers:\n  - image: bad.png\n",
    "anchor: {x: 0, y: 0, width: 200, height: 200, renderer: static, portrait: bad.png}\n",
])
def test_a_damaged_or_oversized_image_is_a_config_error(tmp_path, make, message, where):
    make(tmp_path / "bad.png")
    with pytest.raises(ConfigError) as err:
        load_scene(scene_with(tmp_path, where))
    assert message in str(err.value) and "bad.png" in str(err.value)


def test_check_and_snapshot_report_a_corrupt_image_in_one_line(tmp_path):
    png_with_corrupt_pixels(tmp_path / "bad.png")
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    (scenes / "default.yaml").write_text("canvas: {width: 640, height: 360, fps: 20}\n"
                                         f"background:\n  image: {tmp_path / 'bad.png'}\n")
    cfg = write_config(tmp_path / "config.yaml", scenes_dir=str(scenes))
    for args in (("check", "-c", str(cfg)),
                 ("snapshot", "-c", str(cfg), "-o", str(tmp_path / "s.png"))):
        result = run_broadcaster(*args)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert "background.image" in result.stderr and "not a readable image" in result.stderr


def test_check_opens_the_bed(tmp_path):
    (tmp_path / "bed.ogg").write_bytes(b"OggS" + b"\x00" * 200)
    with pytest.raises(ConfigError) as err:
        load_scene(scene_with(tmp_path, "audio:\n  bed: bed.ogg\n"))
    assert err.value.key == "audio.bed" and "bed.ogg" in str(err.value)


def test_a_long_bed_is_cut_to_max_bed_s(tmp_path):
    """An hour of FLAC (sine, compresses well) decodes only its first MAX_BED_S seconds."""
    bed = tmp_path / "hour.flac"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=220:duration=3600",
                    "-ac", "2", "-ar", "8000", str(bed)], check=True, timeout=300)
    tracemalloc.start()
    started = time.monotonic()
    samples = load_bed(bed, 48000)
    elapsed = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert samples.shape == (int(MAX_BED_S * 48000), 2)
    assert np.abs(samples).max() > 0.05
    assert peak < 600 * 1024 * 1024, peak
    print(f"1 h FLAC bed: {elapsed:.1f} s, peak {peak / 2**20:.0f} MiB")


def test_a_good_image_still_loads(tmp_path):
    Image.new("RGBA", (32, 32), (255, 0, 0, 255)).save(tmp_path / "ok.png")
    scene = load_scene(scene_with(tmp_path, "layers:\n  - image: ok.png\n"))
    assert scene.layers[0].path.name == "ok.png"
