"""tools/export_wav2lip.py on a random-weight checkpoint saved the way the original Wav2Lip
release saves them (a dict with 'state_dict', keys prefixed 'module.' by DataParallel)."""
import subprocess
import sys

import numpy as np
import pytest

from tests.support.paths import ROOT

torch = pytest.importorskip("torch", reason="the converter needs torch (the test extra)")


def _original_layout(path, seed: int = 3):
    """A checkpoint like wav2lip_gan.pth: random weights and BatchNorm statistics."""
    sys.path.insert(0, str(ROOT / "tools"))
    from export_wav2lip_random import Wav2Lip
    torch.manual_seed(seed)
    model = Wav2Lip()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    wrapped = torch.nn.DataParallel(model)
    torch.save({"state_dict": wrapped.state_dict(), "optimizer": None, "global_step": 1,
                "global_epoch": 1}, path)
    return model.eval()


def _run(*args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "export_wav2lip.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_checkpoint_round_trips(tmp_path):
    ckpt = tmp_path / "wav2lip_gan.pth"
    model = _original_layout(ckpt)
    assert all(k.startswith("module.") for k in torch.load(ckpt, weights_only=True)["state_dict"])
    out = tmp_path / "wav2lip_gan.onnx"
    result = _run(ckpt, out)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "max abs difference" in result.stdout and ": ok" in result.stdout, result.stdout
    # the ONNX file carries these weights: it answers as the torch model does on new inputs
    import onnxruntime as ort
    mel = torch.randn(3, 1, 80, 16)
    faces = torch.rand(3, 6, 96, 96)
    with torch.no_grad():
        want = model(mel, faces).numpy()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"mel": mel.numpy(), "faces": faces.numpy()})
    assert np.abs(got - want).max() < 1e-4
    # and the anchor takes it
    from broadcaster.avatar.wav2lip import Wav2LipModel
    assert Wav2LipModel(out).infer(mel.numpy()[:, 0], faces.numpy()).shape == (3, 3, 96, 96)


def test_a_checkpoint_of_another_model_is_refused_clearly(tmp_path):
    ckpt = tmp_path / "syncnet.pth"
    torch.save({"state_dict": {"module.face_encoder.0.weight": torch.zeros(3)}}, ckpt)
    result = _run(ckpt, tmp_path / "x.onnx")
    assert result.returncode == 2
    assert "syncnet.pth: not Wav2Lip's weights" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "junk.pth").write_bytes(b"junk")
    result = _run(tmp_path / "junk.pth", tmp_path / "y.onnx")
    assert result.returncode == 2 and "junk.pth: not a loadable torch checkpoint" in result.stderr
    assert not (tmp_path / "x.onnx").exists()
