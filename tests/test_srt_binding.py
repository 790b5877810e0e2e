"""The ctypes structs must match libsrt's C layout, or every statistic is garbage."""

import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest

from broadcaster.transport import libsrt

HEADER = Path("/usr/include/srt/srt.h")
FIELDS = ["msRTT", "mbpsSendRate", "pktSndBuf", "byteSndBuf", "msSndBuf", "pktSndDrop",
          "pktSndLossTotal", "byteSentUniqueTotal", "byteRecvUnique", "pktFlightSize"]


@pytest.mark.skipif(shutil.which("cc") is None or not HEADER.exists(),
                    reason="needs a C compiler and /usr/include/srt/srt.h (libsrt-gnutls-dev)")
def test_struct_layout_matches_the_c_header(tmp_path):
    src = tmp_path / "layout.c"
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include <srt/srt.h>', 'int main(void){',
             'printf("%zu %zu %zu\\n", sizeof(SRT_TRACEBSTATS), sizeof(SRT_MSGCTRL), '
             'offsetof(SRT_MSGCTRL, grpdata_size));']
    lines += [f'printf("%zu\\n", offsetof(SRT_TRACEBSTATS, {f}));' for f in FIELDS]
    lines += ['printf("%d %d %d %d %d\\n", SRTO_STREAMID, SRTO_PAYLOADSIZE, SRTO_PEERIDLETIMEO, '
              'SRTO_PASSPHRASE, SRTO_TRANSTYPE);', 'return 0;}']
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run(["cc", str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    C, M = libsrt.CBytePerfMon, libsrt.SrtMsgCtrl
    assert [int(x) for x in out[:3]] == [ctypes.sizeof(C), ctypes.sizeof(M), M.grpdata_size.offset]
    assert [int(x) for x in out[3:3 + len(FIELDS)]] == [getattr(C, f).offset for f in FIELDS]
    assert [int(x) for x in out[3 + len(FIELDS):]] == [
        libsrt.SRTO_STREAMID, libsrt.SRTO_PAYLOADSIZE, libsrt.SRTO_PEERIDLETIMEO,
        libsrt.SRTO_PASSPHRASE, libsrt.SRTO_TRANSTYPE]


def test_library_loads_and_reports_version_1_5():
    assert libsrt.version().startswith("1.5.")
