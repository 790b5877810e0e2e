"""The host's mic on a real broadcast: `broadcaster run --mic FILE` with espeak-ng speech,
real Silero VAD + tiny.en, Piper voice, x264/AAC recording decoded with PyAV."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import av
import numpy as np
import pytest

from asr_helpers.speech import speech_with_pauses, words
from conftest import start_broadcaster

PARAGRAPH = ("Good evening and welcome to the late news. Tonight we look at the long story of the river "
             "that runs through our city, how it shaped the town over two hundred years, why the bridges "
             "were built where they stand, and what the engineers plan for the next flood season. We will "
             "also hear from people who live along its banks, and from the workers who keep the locks "
             "running every single day of the year.")
AAC_PRIMING_S = 1024 / 48000     # the AAC encoder's delay: decoded audio lags its pts by this
FPS = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.loads(r.read())


def _post(port: int, path: str, body: dict) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 202


def _wait_up(proc, port: int, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        try:
            _get(port, "/healthz")
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the broadcaster's control port never answered")


def _run_with_mic(tmp_path, wav, seconds: float, during=None):
    port = _free_port()
    out = tmp_path / "out.flv"
    proc = start_broadcaster("run", "--mic", str(wav), "--output", str(out), "--responder", "read-aloud",
                             "--duration", str(seconds), "--size", "640x360", "--fps", str(FPS),
                             "--control-port", str(port))
    try:
        _wait_up(proc, port)
        if during is not None:
            during(port)
        time.sleep(max(0.0, seconds - 2.0))
        turns, mic = _get(port, "/turns")["turns"], _get(port, "/mic")
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    return turns, mic, out, err


def _decoded_audio(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.concatenate([f.to_ndarray().mean(axis=0) for f in c.decode(c.streams.audio[0])])


def test_host_question_is_transcribed_and_answered_on_air(tmp_path):
    wav, spans = speech_with_pauses(tmp_path / "host.wav", ["What is the weather like in Paris today?"],
                                    lead_s=1.0, tail_s=12.0)
    turns, mic, out, err = _run_with_mic(tmp_path, wav, 12)
    host = [t for t in turns if t["kind"] == "host"]
    assert len(host) == 1, turns
    assert {"weather", "paris", "today"} <= words(host[0]["text"]), host[0]
    assert host[0]["spoken"] and not host[0]["interrupted"]
    assert host[0]["ms"]["total_to_muxed"] is not None          # its audio reached the recording
    final = mic["finals"][0]
    assert mic["onsets"][0]["barge_in"] is False               # nothing was on air to cut
    assert abs(mic["onsets"][0]["t"] - spans[0][0]) < 0.3        # VAD found the question where it is
    lag = final["speech_end_to_text_ms"] + host[0]["ms"]["total_to_muxed"]
    print(f"end of utterance -> answer muxed: {lag:.0f} ms (speech end -> final text "
          f"{final['speech_end_to_text_ms']:.0f} ms incl. 500 ms VAD hangover, asr {final['asr_ms']:.0f} ms; "
          f"host turn -> first audio muxed {host[0]['ms']['total_to_muxed']:.0f} ms)")
    assert lag < 2500
    audio = _decoded_audio(out)                                  # the answer is audible in the file
    assert np.abs(audio[int(spans[0][1] * 48000):]).max() > 0.05


def test_host_barge_in_cuts_the_anchor_within_one_frame(tmp_path):
    wav, spans = speech_with_pauses(tmp_path / "barge.wav", ["Sorry to cut in, what about the football game?"],
                                    lead_s=5.0, tail_s=10.0)
    turns, mic, out, err = _run_with_mic(tmp_path, wav, 13, during=lambda port: _post(port, "/say", {"text": PARAGRAPH}))
    say = [t for t in turns if t["kind"] == "say"]
    host = [t for t in turns if t["kind"] == "host"]
    assert say and say[0]["interrupted"], turns
    assert host and {"football", "game"} <= words(host[0]["text"]), turns
    onset = mic["onsets"][0]
    assert onset["barge_in"] is True and abs(onset["t"] - spans[0][0]) < 0.3
    audio = np.abs(_decoded_audio(out))
    t_on = onset["pts_s"]                        # the onset on the recording's clock (media pts)
    i_on = int((t_on + AAC_PRIMING_S) * 48000)
    assert audio[i_on - 24000:i_on].max() > 0.05                    # the anchor was talking
    # the first moment after the onset from which the anchor is silent for 0.5 s
    loud = np.flatnonzero(audio[i_on:] > 1e-3)
    gaps = np.flatnonzero(np.diff(loud) > 24000)
    assert len(gaps), "the anchor never fell silent after the onset"
    t_cut = (i_on + loud[gaps[0]] + 1) / 48000 - AAC_PRIMING_S
    latency = t_cut - t_on
    print(f"barge-in: onset at media {t_on:.3f} s (slot {onset['frame_index']}), anchor silent from "
          f"{t_cut:.3f} s: {latency * 1000:.0f} ms (one frame = {1000 / FPS:.0f} ms, fade 5 ms)")
    assert latency <= 1 / FPS + 0.005 + 0.012            # one frame slot + the 5 ms fade (+ rounding)
    assert t_cut >= onset["frame_index"] / FPS - 0.002     # and not before the slot after the onset
