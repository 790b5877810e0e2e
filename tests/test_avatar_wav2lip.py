"""Wav2Lip adapter end to end on a random-weight model with Wav2Lip's architecture.

The model (~145 MB) is exported at test time into a temp dir with torch (tools/export_wav2lip_random.py);
without torch these tests are skipped, and say so.
"""
import json

import cv2
import numpy as np
import pytest

from broadcaster.avatar import PuppetAnchor, Wav2LipAnchor, detect_face_box, mel_chunks, melspectrogram
from broadcaster.avatar.puppet import DEFAULT_ASSETS
from broadcaster.avatar.wav2lip_mel import _hz_to_mel, _mel_to_hz
from tests.support.data.speech import broadcast_speech

FPS = 20
SPF = 48_000 // FPS


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch = pytest.importorskip("torch", reason="torch is needed to export the random-weight Wav2Lip model")
    from tools.export_wav2lip_random import export
    assert torch is not None
    return export(tmp_path_factory.mktemp("w2l") / "wav2lip_random.onnx")


@pytest.fixture(scope="module")
def portrait(tmp_path_factory):
    """The project's own portrait as a still image, and its face box from the geometry."""
    p = PuppetAnchor(768, 768, idle_motion=False)
    img = p.render_params(np.zeros(7, np.float32))
    path = tmp_path_factory.mktemp("img") / "anchor.png"
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA))
    geo = json.loads((DEFAULT_ASSETS / "geometry.json").read_text())
    box = [224, 150, 544, 520]  # face, brows to chin, in canvas px
    assert geo["canvas"] == [768, 768]
    return path, box


@pytest.fixture(scope="module")
def speech(piper):
    return broadcast_speech(piper, "Here is the weather for tonight.", SPF * 6, SPF * 8)


def test_mel_recipe_shapes_and_scale():
    t = np.arange(16000) / 16000
    mel = melspectrogram(0.5 * np.sin(2 * np.pi * 1000 * t))
    assert mel.shape == (80, 1 + 16000 // 200)
    assert mel.min() >= -4.0 and mel.max() <= 4.0
    # the 1 kHz tone lands in the mel band whose centre is nearest 1 kHz
    centres = _mel_to_hz(np.linspace(_hz_to_mel(55), _hz_to_mel(7600), 82))[1:-1]
    assert abs(int(mel[:, 40].argmax()) - int(np.abs(centres - 1000).argmin())) <= 1
    assert np.allclose(melspectrogram(np.zeros(4000)), -4.0)
    chunks = mel_chunks(mel, 25)
    assert all(c.shape == (80, 16) for c in chunks) and len(chunks) == 22  # inference.py's slicing


def test_mel_matches_wav2lip_audio_py_reference():
    """Reference made with librosa + scipy by tests/support/data/mel_reference.py."""
    from tests.support.data.mel_reference import HERE, reference_signal
    ref = np.load(HERE / "wav2lip_mel_reference.npy")
    got = melspectrogram(reference_signal())
    assert got.shape == ref.shape == (80, 41)
    assert np.abs(got - ref).max() < 1e-4


def test_adapter_end_to_end(model_path, portrait, speech):
    image, box = portrait
    anchor = Wav2LipAnchor(640, 480, image=image, model=model_path, face_box=box, fps=FPS)
    x0, y0, x1, y1 = anchor.face_box
    base = anchor.render(0, np.zeros(SPF, np.float32))
    assert base.shape == (480, 640, 4) and not anchor.last_inferred
    changed, inferred = [], []
    for i in range(1, len(speech) // SPF):
        frame = anchor.render(i, speech[i * SPF:(i + 1) * SPF])
        diff = np.abs(frame.astype(int) - base.astype(int))
        inferred.append(anchor.last_inferred)
        changed.append(diff[y0:y1, x0:x1].mean())
        # only the lower half of the face box is ever touched
        outside = diff.copy()
        outside[y0 + int(0.4 * (y1 - y0)):y1, x0:x1] = 0
        assert outside.max() == 0
    inferred = np.array(inferred)
    changed = np.array(changed)
    assert inferred[:4].sum() == 0 and inferred.sum() > 20
    assert changed[inferred].min() > 1.0 and changed[~inferred].max() == 0.0
    anchor.reset()
    assert np.array_equal(anchor.render(999, np.zeros(SPF, np.float32)), base)


def test_batched_clip(model_path, portrait, speech):
    image, box = portrait
    anchor = Wav2LipAnchor(320, 240, image=image, model=model_path, face_box=box, fps=25)
    clip = speech[SPF * 6:SPF * 6 + 48_000]
    seen = []
    real_infer = anchor.model.infer

    def recording_infer(mels, faces):  # the real session runs; we only keep what it was fed
        seen.append(mels.copy())
        return real_infer(mels, faces)

    anchor.model.infer = recording_infer
    frames = anchor.render_clip(clip, batch_size=8)
    assert len(frames) == 25
    assert [len(m) for m in seen] == [8, 8, 8, 1]
    assert all(f.shape == (240, 320, 4) for f in frames)
    # frame i gets the 16 mel frames starting at int(i * 80 / fps), as Wav2Lip's inference.py
    from broadcaster.tts import resample_to_broadcast
    mel = melspectrogram(np.concatenate([resample_to_broadcast(clip, 48_000, 16_000), np.zeros(3200, np.float32)]))
    fed = np.concatenate(seen)
    for i in (0, 7, 24):
        start = int(i * 80 / 25)
        assert np.allclose(fed[i], mel[:, start:start + 16], atol=1e-5)
    x0, y0, x1, y1 = anchor.face_box
    base = anchor.render(0, np.zeros(SPF, np.float32))
    assert all(np.abs(f[y0:y1, x0:x1].astype(int) - base[y0:y1, x0:x1]).mean() > 1.0 for f in frames)


def test_face_box_errors_are_clear(model_path, portrait, tmp_path):
    image, _ = portrait
    with pytest.raises(ValueError, match="does not lie inside"):
        Wav2LipAnchor(640, 480, image=image, model=model_path, face_box=[0, 0, 5000, 10])
    with pytest.raises(ValueError, match="missing or unreadable"):
        Wav2LipAnchor(640, 480, image=tmp_path / "none.png", model=model_path, face_box=[0, 0, 10, 10])
    img = cv2.imread(str(image))
    # OpenCV 4.x ships the Haar cascades (pyproject pins it): the drawn face is found
    x0, y0, x1, y1 = detect_face_box(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), str(image))
    fx0, fy0, fx1, fy1 = 224, 150, 544, 520
    inter = max(0, min(x1, fx1) - max(x0, fx0)) * max(0, min(y1, fy1) - max(y0, fy0))
    union = (x1 - x0) * (y1 - y0) + (fx1 - fx0) * (fy1 - fy0) - inter
    assert inter / union > 0.3, (x0, y0, x1, y1)
    with pytest.raises(ValueError, match="no face found"):
        detect_face_box(np.full((200, 200, 3), 128, np.uint8), "a grey card")


def test_wav2lip_anchor_finds_the_face_by_itself(model_path, portrait):
    image, _ = portrait
    anchor = Wav2LipAnchor(320, 240, image=image, model=model_path, fps=20)
    x0, y0, x1, y1 = anchor.face_box
    assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240
    frame = anchor.render(0, np.zeros(SPF, np.float32))
    assert frame.shape == (240, 320, 4)


def test_wrong_model_is_rejected(portrait):
    image, box = portrait
    with pytest.raises(ValueError, match=r"wav2lip model .*puppet.onnx: expected 2 inputs"):
        Wav2LipAnchor(640, 480, image=image, model=DEFAULT_ASSETS / "puppet.onnx", face_box=box)


def test_the_model_computes_only_the_mouth_and_the_same_numbers_there(model_path):
    """Wav2LipModel trims the graph to the rows of the lower half (the mouth, all that is
    pasted): the lower half matches the whole model's to float rounding, at less cost, and
    the upper half is zero."""
    import onnxruntime as ort

    from broadcaster.avatar.lower_half import trim_to_lower_half
    from broadcaster.avatar.wav2lip import Wav2LipModel
    model = Wav2LipModel(model_path, prefer_gpu=False)
    assert 0.4 < model.rows_computed < 0.7
    whole = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    mels = rng.standard_normal((4, 80, 16)).astype(np.float32)
    faces = rng.random((4, 6, 96, 96)).astype(np.float32)
    want = whole.run(None, {model.mel_name: mels[:, None], model.face_name: faces})[0]
    got = model.infer(mels, faces)
    assert got.shape == want.shape == (4, 3, 96, 96)
    diff = float(np.abs(got[:, :, 48:] - want[:, :, 48:]).max())
    print(f"lower half: max abs difference from the whole model {diff:.2e}")
    assert diff < 1e-5 and not got[:, :, :48].any()
    # the arithmetic done: fewer multiply-adds in the trimmed graph's convolutions (the time
    # it saves is tools/bench_anchor.py's figure; this machine is shared)

    def conv_macs(session_bytes):
        import onnx
        m = onnx.shape_inference.infer_shapes(onnx.load_from_string(session_bytes))
        shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
                  for v in list(m.graph.value_info) + list(m.graph.output)}
        weights = {i.name: list(i.dims) for i in m.graph.initializer}
        total = 0
        for node in m.graph.node:
            if node.op_type in ("Conv", "ConvTranspose") and node.output[0] in shapes:
                w = weights.get(node.input[1]) or shapes.get(node.input[1])
                out = shapes[node.output[0]]
                per_out = w[1] * w[2] * w[3] if node.op_type == "Conv" else w[0] * w[2] * w[3] / 4
                total += out[1] * out[2] * out[3] * per_out
        return total

    raw = model_path.read_bytes()
    trimmed, _ = trim_to_lower_half(raw)
    assert conv_macs(trimmed) < 0.75 * conv_macs(raw)


def test_a_graph_that_is_not_wav2lip_is_left_whole():
    from broadcaster.avatar.lower_half import trim_to_lower_half
    raw = (DEFAULT_ASSETS / "puppet.onnx").read_bytes()
    assert trim_to_lower_half(raw) == (raw, 1.0)
