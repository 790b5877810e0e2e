"""tools/onnxruntime_build.sh, which bootstrap.sh runs after each pip install: onnxruntime-gpu
and onnxruntime write the same `onnxruntime` package, so the one not wanted is removed and the
wanted one laid down again. Run in a throwaway venv with two stand-in wheels (the real ones are
hundreds of MB) that each write onnxruntime/__init__.py saying which build they are."""
import base64
import hashlib
import subprocess
import sys
import zipfile

import pytest

from tests.support.paths import ROOT


def _wheel(folder, dist: str, build: str):
    name = f"{dist.replace('-', '_')}-1.0"
    path = folder / f"{name}-py3-none-any.whl"
    files = {"onnxruntime/__init__.py": f'BUILD = "{build}"\n',
             f"{name}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n",
             f"{name}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for file, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{file},sha256={digest},{len(text.encode())}")
    record.append(f"{name}.dist-info/RECORD,,")
    with zipfile.ZipFile(path, "w") as zf:
        for file, text in files.items():
            zf.writestr(file, text)
        zf.writestr(f"{name}.dist-info/RECORD", "\n".join(record) + "\n")
    return path


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("boot")
    subprocess.run([sys.executable, "-m", "venv", str(root / ".venv")], check=True, timeout=120)
    wheels = root / "wheels"
    wheels.mkdir()
    _wheel(wheels, "onnxruntime", "cpu")
    _wheel(wheels, "onnxruntime-gpu", "gpu")
    return root


def _sh(root, script: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(root / "wheels"),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    result = subprocess.run(["bash", "-c", f"set -euo pipefail; source {ROOT}/tools/onnxruntime_build.sh; {script}"],
                            cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _state(root):
    return _sh(root, ".venv/bin/python -c 'import onnxruntime; print(onnxruntime.BUILD)'; "
                     ".venv/bin/python -m pip list --format=freeze | grep -i onnxruntime || true").split()


@pytest.mark.parametrize("order", [("onnxruntime", "onnxruntime-gpu"), ("onnxruntime-gpu", "onnxruntime")])
def test_the_wanted_build_is_the_one_left(venv, order):
    _sh(venv, f".venv/bin/python -m pip install -q {order[0]} && .venv/bin/python -m pip install -q {order[1]}")
    _sh(venv, "build=gpu; onnxruntime_build")
    build, installed = _state(venv)
    assert (build, installed.replace("_", "-")) == ("gpu", "onnxruntime-gpu==1.0")
    _sh(venv, "build=gpu; onnxruntime_build")            # nothing to swap: a no-op
    assert _state(venv)[0] == "gpu"
    _sh(venv, "build=cpu; onnxruntime_build")            # the GPU went away: back to the CPU build
    assert _state(venv) == ["cpu", "onnxruntime==1.0"]
    _sh(venv, ".venv/bin/python -m pip uninstall -q -y onnxruntime")
