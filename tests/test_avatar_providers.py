"""Which ONNX Runtime execution provider the avatar asks for, and the one warning when a GPU
was asked for but cannot be used (this machine has no GPU: the provider lists and the CUDA
build info are given; the library checks run for real with ctypes)."""
import logging
import shutil
from types import SimpleNamespace

import pytest

from broadcaster.avatar.onnx_session import (CPU, CUDA, choose_providers, cuda_fallback_reason,
                                             gpu_warning, open_session)
from broadcaster.avatar.puppet import DEFAULT_ASSETS

CUDA12 = SimpleNamespace(package_name="onnxruntime-gpu", cuda_version="12.8", cudnn_version="9.8")


def test_cuda_first_when_built_in_and_wanted():
    assert choose_providers([CUDA, "TensorrtExecutionProvider", CPU], True) == [CUDA, CPU]
    assert choose_providers([CUDA, CPU], False) == [CPU]
    assert choose_providers([CPU], True) == [CPU]


def test_the_warning_names_the_library_that_does_not_load():
    present = {"libcuda.so.1", "libcudart.so.12", "libcublas.so.12", "libcufft.so.11"}
    message = gpu_warning([CUDA, CPU], [CPU], [CUDA, CPU], True, CUDA12, True,
                          loads=lambda name: name in present)
    assert "CUDA is not usable, running on the CPU" in message
    assert "libcublasLt.so.12 (CUDA 12 cuBLAS)" in message and "libcudnn.so.9 (cuDNN 9)" in message
    assert "libcudart" not in message
    everything = gpu_warning([CUDA, CPU], [CPU], [CUDA, CPU], True, CUDA12, True, loads=lambda name: True)
    assert "no usable GPU" in everything
    # CUDA 13 builds load the CUDA 13 libraries
    assert "libcudart.so.13" in cuda_fallback_reason(SimpleNamespace(cuda_version="13.0"), lambda n: False)


def test_no_warning_when_the_gpu_runs_or_was_not_wanted():
    assert gpu_warning([CUDA, CPU], [CUDA, CPU], [CUDA, CPU], True, CUDA12, True) is None
    assert gpu_warning([CPU], [CPU], [CUDA, CPU], False, CUDA12, True) is None
    assert gpu_warning([CPU], [CPU], [CPU], True, CUDA12, False) is None


def test_a_gpu_machine_with_the_cpu_build_gets_a_hint():
    message = gpu_warning([CPU], [CPU], [CPU], True, SimpleNamespace(), True)
    assert "CPU build of onnxruntime" in message and "bootstrap.sh" in message


def test_real_library_check_on_this_machine():
    # no CUDA here: the real loader says which library is missing
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has an NVIDIA GPU: the CUDA libraries may well load")
    assert "do not load" in cuda_fallback_reason(CUDA12) and "libcudart.so.12" in cuda_fallback_reason(CUDA12)


def test_the_provider_log_line_stays(caplog):
    with caplog.at_level(logging.INFO, logger="broadcaster.avatar.onnx_session"):
        session = open_session(DEFAULT_ASSETS / "puppet.onnx", purpose="puppet")
    assert session.get_providers()[0] in (CUDA, CPU)
    assert any(f"puppet model puppet.onnx runs on {session.get_providers()[0]}" in r.getMessage()
               for r in caplog.records)
