"""Set FFmpeg AVOptions (maxrate, bufsize) on an open PyAV codec context.

Why: libx264 re-reads rc_max_rate and rc_buffer_size before every frame (FFmpeg's
reconfig_encoder), so a VBV that follows a lowered bitrate keeps keyframes in proportion.
Left at the ceiling it does not: libx264 may spend the ceiling-sized buffer on each
keyframe, which at a low bitrate is a large part of a second's budget in one frame and a
queue spike on a narrow link.

PyAV 18 exposes bit_rate but not rc_buffer_size, and max_bit_rate is read-only. So this finds
the AVCodecContext pointer PyAV keeps in a C field of the CodecContext object, checks it
twice (its AVClass is named "AVCodecContext"; its "b" option equals the object's bit_rate),
reading every candidate through /proc/self/mem so a wrong guess is an error, never a crash,
and only then calls av_opt_set_int from PyAV's own libavutil. When a check fails, the
bitrate still follows (bit_rate is PyAV's own) and the VBV stays as opened.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import logging
import os
import struct

log = logging.getLogger(__name__)

_CLASS_NAME = b"AVCodecContext"


class CodecOptionsUnavailable(RuntimeError):
    """The AVCodecContext behind a PyAV codec context could not be found safely."""


def _load_avutil():
    import av
    libdir = os.path.join(os.path.dirname(av.__file__), os.pardir, "av.libs")
    found = sorted(glob.glob(os.path.join(libdir, "libavutil-*.so*")))
    if not found:       # a PyAV built against the system FFmpeg
        name = ctypes.util.find_library("avutil")
        if name is None:
            raise CodecOptionsUnavailable("libavutil not found")
        found = [name]
    lib = ctypes.CDLL(found[0])
    lib.av_opt_set_int.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64, ctypes.c_int]
    lib.av_opt_set_int.restype = ctypes.c_int
    lib.av_opt_get_int.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                   ctypes.POINTER(ctypes.c_int64)]
    lib.av_opt_get_int.restype = ctypes.c_int
    return lib


def _read(fd: int, addr: int, size: int) -> bytes | None:
    """Read our own memory without faulting: an unmapped address is an OSError here."""
    if addr <= 0:
        return None
    try:
        data = os.pread(fd, size, addr)
    except (OSError, OverflowError, ValueError):
        return None
    return data if len(data) == size else None


def _pointer(fd: int, addr: int) -> int | None:
    data = _read(fd, addr, 8) if addr % 8 == 0 else None     # pointers are aligned
    return None if data is None else struct.unpack("=Q", data)[0]


class CodecOptions:
    """av_opt_set_int on the AVCodecContext of one (open) PyAV codec context."""

    _avutil = None

    def __init__(self, codec_context) -> None:
        if CodecOptions._avutil is None:
            CodecOptions._avutil = _load_avutil()
        self._cc = codec_context            # keeps the pointer alive as long as we are
        self._ptr = self._find(codec_context)

    def _find(self, cc) -> int:
        base = id(cc)
        words = (type(cc).__basicsize__ - 16) // 8
        fd = os.open("/proc/self/mem", os.O_RDONLY)
        try:
            for i in range(words):
                candidate = _pointer(fd, base + 16 + 8 * i)
                av_class = _pointer(fd, candidate) if candidate else None
                name_at = _pointer(fd, av_class) if av_class else None
                name = _read(fd, name_at, len(_CLASS_NAME) + 1) if name_at else None
                if name != _CLASS_NAME + b"\0":
                    continue
                value = ctypes.c_int64()
                if (self._avutil.av_opt_get_int(candidate, b"b", 0, ctypes.byref(value)) == 0
                        and value.value == cc.bit_rate):
                    return candidate
        finally:
            os.close(fd)
        raise CodecOptionsUnavailable("cannot find the AVCodecContext behind this PyAV codec context")

    def set_int(self, name: str, value: int) -> None:
        err = self._avutil.av_opt_set_int(self._ptr, name.encode(), int(value), 0)
        if err < 0:
            raise ValueError(f"cannot set codec option {name}={value} (AVERROR {err})")

    def get_int(self, name: str) -> int:
        value = ctypes.c_int64()
        err = self._avutil.av_opt_get_int(self._ptr, name.encode(), 0, ctypes.byref(value))
        if err < 0:
            raise ValueError(f"cannot read codec option {name} (AVERROR {err})")
        return value.value


def codec_options(codec_context) -> CodecOptions | None:
    """CodecOptions for this context, or None (logged once per process) when not found."""
    try:
        return CodecOptions(codec_context)
    except (CodecOptionsUnavailable, OSError) as exc:
        if not getattr(codec_options, "_warned", False):
            codec_options._warned = True
            log.warning("the encoder's VBV buffer cannot follow the bitrate (%s); it stays "
                        "sized for the ceiling", exc)
        return None
