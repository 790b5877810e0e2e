"""One place that opens ONNX Runtime sessions for the avatar: CUDA when present, else CPU.

When a GPU is asked for (prefer_gpu, and the onnxruntime-gpu build is installed) but the
session comes up on the CPU, ONNX Runtime only prints its own error on stderr; here it is one
warning that says why (which CUDA or cuDNN library does not load, or no GPU/driver), once per
process, and the anchor runs on the CPU. A machine with an NVIDIA GPU and the CPU build gets
one hint to install the GPU build.
"""
from __future__ import annotations

import ctypes
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import onnxruntime as ort

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
_warned: set[str] = set()


def choose_providers(available: Iterable[str], prefer_gpu: bool) -> list[str]:
    """The providers to ask for, best first: CUDA when wanted and built in, always CPU last."""
    available = list(available)
    return [CUDA, CPU] if prefer_gpu and CUDA in available else [CPU]


def cuda_libraries(build_info) -> list[tuple[str, str]]:
    """(library, what it is) that this onnxruntime-gpu build loads, from its build info."""
    cuda = str(getattr(build_info, "cuda_version", "") or "12").split(".")[0]
    cudnn = str(getattr(build_info, "cudnn_version", "") or "9").split(".")[0]
    return [("libcuda.so.1", "the NVIDIA driver"), (f"libcudart.so.{cuda}", f"CUDA {cuda} runtime"),
            (f"libcublasLt.so.{cuda}", f"CUDA {cuda} cuBLAS"), (f"libcublas.so.{cuda}", f"CUDA {cuda} cuBLAS"),
            (f"libcufft.so.{'11' if cuda == '12' else cuda}", f"CUDA {cuda} cuFFT"),
            (f"libcudnn.so.{cudnn}", f"cuDNN {cudnn}")]


def _loads(name: str) -> bool:
    try:
        ctypes.CDLL(name)
        return True
    except OSError:
        return False


def cuda_fallback_reason(build_info, loads: Callable[[str], bool] = _loads) -> str:
    """Why CUDA did not come up: the libraries that do not load, else no usable GPU."""
    missing = [f"{name} ({what})" for name, what in cuda_libraries(build_info) if not loads(name)]
    if missing:
        return ("these libraries do not load: " + ", ".join(missing) +
                " (install the NVIDIA driver, CUDA and cuDNN of those versions, e.g. the "
                "nvidia-*-cu* pip packages, or put them on LD_LIBRARY_PATH)")
    return "the CUDA and cuDNN libraries load, but no usable GPU was found (driver or device)"


def gpu_warning(requested: list[str], got: list[str], available: list[str], prefer_gpu: bool,
                build_info, has_nvidia_smi: bool, loads: Callable[[str], bool] = _loads) -> str | None:
    """The one warning for a GPU wanted but not used, or None."""
    if not prefer_gpu:
        return None
    if CUDA in requested and CUDA not in got:
        return (f"a GPU was asked for but CUDA is not usable, running on the CPU: "
                f"{cuda_fallback_reason(build_info, loads)}")
    if CUDA not in available and has_nvidia_smi:
        return ("this machine has an NVIDIA GPU but the CPU build of onnxruntime is installed, "
                "running on the CPU: `bash tools/bootstrap.sh` installs onnxruntime-gpu (the gpu extra)")
    return None


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def open_session(model: str | Path, *, intra_op_threads: int = 1, prefer_gpu: bool = True,
                 purpose: str = "avatar",
                 rewrite: Callable[[bytes], bytes] | None = None) -> ort.InferenceSession:
    """Open `model` (through `rewrite` of its bytes, when given); says in the log which
    execution provider runs it."""
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"{purpose} model not found: {path}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    available = ort.get_available_providers()
    providers = choose_providers(available, prefer_gpu)
    try:
        if rewrite is None:
            session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        else:   # from a file: a session made from bytes keeps them for its lifetime
            with tempfile.TemporaryDirectory(prefix="broadcaster-model-") as folder:
                rewritten = Path(folder) / path.name
                rewritten.write_bytes(rewrite(path.read_bytes()))
                session = ort.InferenceSession(str(rewritten), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise RuntimeError(f"{purpose} model {path} could not be loaded: {exc}") from None
    from onnxruntime.capi import build_and_package_info
    warning = gpu_warning(providers, session.get_providers(), available, prefer_gpu,
                          build_and_package_info, shutil.which("nvidia-smi") is not None)
    if warning:
        _warn_once(warning)
    log.info("%s model %s runs on %s", purpose, path.name, session.get_providers()[0])
    return session
