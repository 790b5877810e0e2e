"""tools/quantize_wav2lip.py on a random-weight model of Wav2Lip's real architecture: the int8
model it writes is quantized (int8 weights, QDQ around the convolutions), its output stays
within the printed difference of the float model, and the video-loop anchor runs it.
"""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from broadcaster.avatar.onnx_session import open_session
from broadcaster.avatar.video_anchor import VideoLoopAnchor
from tests.support.data.speech import broadcast_speech
from tests.support.presenter import (
    presenter_frames,
    random_wav2lip,
    wait_for_mouth,
    write_clip,
)

ROOT = Path(__file__).resolve().parent.parent
FPS = 20
SPF = 48_000 // FPS
W, H = 320, 240


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    pytest.importorskip("torch", reason="torch exports the random-weight Wav2Lip model")
    pytest.importorskip("onnx", reason="onnxruntime's quantization tools need the onnx package")
    return random_wav2lip(tmp_path_factory.mktemp("w2l"))


def test_int8_model_is_quantized_close_to_float_and_runs_in_the_anchor(tmp_path, model, piper):
    import onnx
    frames, _ = presenter_frames(W, H, 12)
    clip = write_clip(tmp_path / "presenter.mp4", frames, FPS)
    out = tmp_path / "wav2lip.int8.onnx"
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "quantize_wav2lip.py"), str(model), str(out),
                           "--clip", str(clip)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    line = done.stdout.strip().splitlines()[-1]
    figures = re.search(r"max abs difference ([\d.]+), mean ([\d.]+) of 255 \(float output spread ([\d.]+)\)", line)
    assert figures and line.endswith(": ok"), line
    max_diff, mean_diff, spread = map(float, figures.groups())
    assert 0 < mean_diff <= 2.0 and max_diff < 0.5 * spread, line

    graph = onnx.load(str(out)).graph
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4]
    assert len(int8_weights) >= 20          # Wav2Lip has dozens of convolutions, all int8 now
    assert out.stat().st_size < 0.4 * model.stat().st_size

    # the printed difference is what the anchor's inputs see: check it on fresh inputs
    rng = np.random.default_rng(3)
    feed = {"mel": rng.uniform(-4, 0, (4, 1, 80, 16)).astype(np.float32),
            "faces": rng.random((4, 6, 96, 96), dtype=np.float32)}
    want = open_session(model, prefer_gpu=False).run(None, feed)[0]
    got = open_session(out, prefer_gpu=False).run(None, feed)[0]
    assert np.abs(got - want).mean() * 255 <= 2.0

    # the anchor takes the int8 model like any export and renders mouths with it
    speech = broadcast_speech(piper, "Good evening, here is the news.", 0, SPF * 4)
    anchor = VideoLoopAnchor(W, H, video=clip, model=out, fps=FPS, mouth_every=1, prefer_gpu=False)
    try:
        anchor.speech_queued(speech, 0, 0)
        assert wait_for_mouth(anchor, range(4, 12), timeout=60)
    finally:
        anchor.close()


def test_bad_input_is_one_line_naming_the_file(tmp_path, model):
    import wave
    frames, _ = presenter_frames(W, H, 4)
    clip = write_clip(tmp_path / "presenter.mp4", frames, FPS)
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really a wav" * 10)
    with wave.open(str(tmp_path / "speech.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes((np.sin(np.arange(16_000) * 0.1) * 8000).astype(np.int16).tobytes())
    for args, named in ((["--clip", str(clip), "--wav", str(tmp_path / "junk.wav")], "junk.wav"),
                        (["--clip", str(tmp_path / "none.mp4"), "--wav", str(tmp_path / "speech.wav")], "none.mp4")):
        done = subprocess.run([sys.executable, str(ROOT / "tools" / "quantize_wav2lip.py"), str(model),
                               str(tmp_path / "out.onnx"), *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and named in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "out.onnx").exists()
