"""Mic inputs with real parts: files via PyAV, raw PCM through an OS pipe, and PortAudio/ALSA
(no sound card here: an ALSA 'file' PCM stands in, in a subprocess with its own HOME)."""

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from broadcaster.mic.capture import FRAME_SAMPLES, PcmPipeSource, WavFileSource
from tests.support.broadcaster_proc import run_env
from tests.support.data.speech import espeak, speech_with_pauses
from tests.support.paths import ROOT
from tests.support.programs.alsa_mic import write_config

PY = sys.executable


def test_wav_file_any_rate_and_channels_is_resampled_to_16k_mono_frames(tmp_path):
    path, spans = speech_with_pauses(tmp_path / "s.wav", texts=["hello there"], stereo=True)
    frames = list(WavFileSource(str(path)).frames())
    assert all(f.shape == (FRAME_SAMPLES,) and f.dtype == np.float32 for f in frames)
    dur = len(frames) * 0.02
    assert abs(dur - (spans[-1][1] + 1.0)) < 0.05
    assert 0.05 < max(float(abs(f).max()) for f in frames) <= 1.0


def test_wav_file_realtime_pacing(tmp_path):
    path, _ = speech_with_pauses(tmp_path / "s.wav", texts=["hi"], lead_s=0.1, tail_s=0.1)
    t0 = time.monotonic()
    n = sum(1 for _ in WavFileSource(str(path), realtime=True).frames())
    assert time.monotonic() - t0 >= (n - 1) * 0.02 * 0.9


def test_wav_file_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="nope.wav"):
        WavFileSource(str(tmp_path / "nope.wav"))


@pytest.mark.parametrize("rate", [16000, 22050])
def test_pipe_raw_pcm_through_a_real_os_pipe(rate):
    data, src_rate = espeak("testing the pipe")
    if rate == 16000:
        data = np.interp(np.arange(0, len(data), src_rate / 16000), np.arange(len(data)), data).astype(np.int16)
    r, w = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(w, data.astype("<i2").tobytes()), os.close(w)))
    writer.start()
    with os.fdopen(r, "rb") as stream:
        frames = list(PcmPipeSource(stream, sample_rate=rate).frames())
    writer.join()
    expected = len(data) / rate
    assert abs(len(frames) * 0.02 - expected) < 0.06
    assert max(float(abs(f).max()) for f in frames) > 0.05


def _alsa(home, infile, *args):
    out = subprocess.run([PY, "-m", "tests.support.programs.alsa_mic", str(home), str(infile), *args],
                         env=run_env(HOME=str(home)), cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def test_missing_device_error_lists_available_devices(tmp_path):
    res, _ = _alsa(tmp_path, "x", "missing", "USB Mic")
    assert "'USB Mic' not found" in res["error"] and "no input devices" in res["error"]
    (tmp_path / "in.raw").write_bytes(b"\0" * 64000)
    write_config(str(tmp_path), str(tmp_path / "in.raw"), True)
    res, _ = _alsa(tmp_path, tmp_path / "in.raw", "missing", "USB Mic")
    assert "available input devices: [0] 'testmic'" in res["error"]


def test_sound_device_capture_recovers_when_device_comes_back(tmp_path):
    speech, _ = espeak("recover me")
    (tmp_path / "in.raw").write_bytes(np.tile(speech.astype(np.float32) / 32768, 20).astype("<f4").tobytes())
    write_config(str(tmp_path), str(tmp_path / "in.raw"), True)
    res, log = _alsa(tmp_path, tmp_path / "in.raw", "recover")
    assert res["before"] >= 10 and res["peak"] > 0.01          # real audio came through ALSA
    assert res["failed_while_missing"] and "not found" in log   # retried while it was gone
    assert res["reopen_count"] == 1 and res["after"] >= 10      # and resumed when it came back
    assert not res["thread_alive"]
