"""The host's mic on a real broadcast: `broadcaster run --mic FILE` with espeak-ng speech,
real Silero VAD + tiny.en, Piper voice, x264/AAC recording decoded with PyAV."""

from __future__ import annotations

import signal
import time

import av
import numpy as np

from tests.support.broadcaster_proc import healthz, metrics_text, read_turns, start_broadcaster
from tests.support.data.speech import speech_with_pauses, words
from tests.support.http import http_json
from tests.support.media import decode_mono, find_offset
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import stop

PARAGRAPH = ("Good evening and welcome to the late news. Tonight we look at the long story of the river "
             "that runs through our city, how it shaped the town over two hundred years, why the bridges "
             "were built where they stand, and what the engineers plan for the next flood season. We will "
             "also hear from people who live along its banks, and from the workers who keep the locks "
             "running every single day of the year.")
AAC_PRIMING_S = 1024 / 48000     # the AAC encoder's delay: decoded audio lags its pts by this
FPS = 20


def _say(port: int, text: str) -> None:
    status, _ = http_json("POST", f"http://127.0.0.1:{port}/say", {"text": text})
    assert status == 202


def _mic(port: int) -> dict:
    return http_json("GET", f"http://127.0.0.1:{port}/mic")[1]


def _wait_up(proc, port: int, timeout: float = 30.0) -> None:
    wait_for(lambda: healthz(port, timeout=5)[0] == 200, timeout, interval=0.05,
             what="/healthz 200 from the broadcaster", proc=proc)


def _run_with_mic(tmp_path, wav, seconds: float, during=None, extra=()):
    port = free_port()
    out = tmp_path / "out.flv"
    proc = start_broadcaster("run", *extra, "--mic", str(wav), "--output", str(out), "--responder", "read-aloud",
                             "--duration", str(seconds), "--size", "640x360", "--fps", str(FPS),
                             "--control-port", str(port))
    try:
        _wait_up(proc, port)
        if during is not None:
            during(port)
        time.sleep(max(0.0, seconds - 2.0))
        turns, mic = read_turns(port), _mic(port)
        _, err = proc.communicate(timeout=60)
    finally:
        stop(proc, signal.SIGKILL)
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
    turns, mic, out, err = _run_with_mic(tmp_path, wav, 13, during=lambda port: _say(port, PARAGRAPH))
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


def test_remote_asr_and_host_voice_mixed_into_the_broadcast(tmp_path):
    """mic.asr.server -> a real `broadcaster asr-serve`; mix_into_broadcast puts the host's
    voice in the recording (checked by transcribing the recording itself)."""
    import re

    from broadcaster.asr.whisper import WhisperAsr
    from tests.support.broadcaster_proc import run_env
    from tests.support.paths import ROOT
    from tests.support.servers.asr import start_asr_serve

    asr_port, port = free_port(), free_port()
    env = run_env(WIRING_TOKEN="wiring-test-token-42")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"scenes_dir: {ROOT / 'scenes'}\nmic:\n  host_name: Sam\n  mix_into_broadcast: true\n"
                   f"  asr: {{server: 'ws://127.0.0.1:{asr_port}', token_env: WIRING_TOKEN}}\n")
    wav, spans = speech_with_pauses(tmp_path / "host.wav", ["What is the weather like in Paris today?"],
                                    lead_s=1.0, tail_s=12.0)
    out = tmp_path / "out.flv"
    server = start_asr_serve(asr_port, env, "WIRING_TOKEN")
    try:
        proc = start_broadcaster("run", "-c", str(cfg), "--mic", str(wav), "--output", str(out),
                                 "--responder", "read-aloud", "--duration", "11", "--size", "640x360",
                                 "--control-port", str(port), env=env)
        try:
            _wait_up(proc, port)
            time.sleep(9.0)
            turns, mic = read_turns(port), _mic(port)
            metrics = metrics_text(port)
            _, err = proc.communicate(timeout=60)
        finally:
            stop(proc, signal.SIGKILL)
    finally:
        stop(server, timeout=20)
    assert proc.returncode == 0 and "Traceback" not in err, err[-3000:]
    host = [t for t in turns if t["kind"] == "host"]
    assert host and host[0]["user"] == "Sam" and {"weather", "paris"} <= words(host[0]["text"]), turns
    assert mic["asr"] == "remote"
    up = re.search(r'broadcaster_link_bytes_total\{direction="up",link="asr_uplink"\} ([\d.e+]+)', metrics)
    assert up, metrics[:2000]
    kbps = float(up.group(1)) * 8 / 1000 / mic["frames_in"] / 0.02
    print(f"asr uplink while on air: {kbps:.1f} kbit/s (Opus + WebSocket framing)")
    assert 4 < kbps <= 20
    assert re.search(r'broadcaster_stage_latency_seconds_count\{stage="asr"\} [1-9]', metrics)
    # the host's own voice is in the recording, whole, before the anchor answers
    rate = 16000
    recording, said = decode_mono(out, rate), decode_mono(wav, rate)
    a, b = int(spans[0][0] * rate), int(spans[0][1] * rate)
    offset, corr = find_offset(recording[:int((spans[0][1] + 2) * rate)], said[a:b], rate,
                               within_s=spans[0][0] + 1.0)
    voice = mic["host_voice"]
    print(f"host voice in the recording: {(offset - spans[0][0]) * 1000:+.0f} ms from where the mic "
          f"file has it, correlation {corr:.2f}, {voice}")
    assert corr > 0.8, (corr, voice)       # the same waveform, not a garbled one
    start = int(offset * rate)
    heard = WhisperAsr().decode(recording[start - rate // 5:start + b - a + rate // 5]).text
    assert {"weather", "paris"} <= words(heard), heard


def test_speakers_mode_closes_the_mic_while_the_anchor_talks(tmp_path):
    """echo: speakers (no headphones): what the mic hears while the anchor is audible could be
    the anchor itself, so it is not used: no barge-in, no host turn from it."""
    from tests.support.paths import ROOT
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"scenes_dir: {ROOT / 'scenes'}\nmic:\n  echo: speakers\n")
    wav, spans = speech_with_pauses(tmp_path / "barge.wav", ["Sorry to cut in, what about the football game?"],
                                    lead_s=5.0, tail_s=6.0)
    turns, mic, out, err = _run_with_mic(tmp_path, wav, 10, extra=("-c", str(cfg)),
                                         during=lambda port: _say(port, PARAGRAPH))
    say = [t for t in turns if t["kind"] == "say"]
    assert say and not say[0]["interrupted"], turns
    assert not [t for t in turns if t["kind"] == "host"] and not mic["onsets"], mic
    assert mic["frames_gated"] * 0.02 > spans[0][1] - spans[0][0]     # the whole question was gated
    audio = np.abs(_decoded_audio(out))
    for t in np.arange(spans[0][0], spans[0][1] + 1.0, 0.5):            # the anchor talked on
        assert audio[int(t * 48000):int((t + 0.5) * 48000)].max() > 0.05, t
