"""The small pieces of the mic wiring: the mixer's host input, HostVoice, settings, policies."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from broadcaster.errors import ConfigError
from broadcaster.media.mixer import AudioMixer
from broadcaster.mic.host import (
    EchoGate,
    HostVoice,
    MicSettings,
    OnsetOffsets,
    TappedSource,
    clean_transcript,
    mic_settings,
    with_mic_override,
)


def _tone(freq: float, rate: int, seconds: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_mixer_host_input_is_off_until_enabled_then_primed_bounded_and_gained():
    mixer = AudioMixer(48000)
    mixer.push_host(np.ones((4800, 2), np.float32))
    assert not mixer.pull(2400).stereo.any()                  # off: nothing queued, nothing played
    mixer.enable_host(gain=0.5, duck=0.3, max_s=0.1, prime_s=0.02)
    mixer.push_host(np.full((480, 2), 0.2, np.float32))     # 10 ms < prime: not played yet
    assert not mixer.pull(480).stereo.any()
    mixer.push_host(np.full((960, 2), 0.2, np.float32))     # 30 ms: primed
    out = mixer.pull(2400).stereo
    assert np.allclose(out[:1440], 0.1) and not out[1440:].any()   # gain 0.5, then ran dry
    mixer.push_host(np.full((9600, 2), 0.4, np.float32))    # 200 ms > max 100 ms: oldest dropped
    assert mixer.host_dropped == 4800
    assert np.allclose(mixer.pull(4800).stereo, 0.2) and not mixer.pull(480).stereo.any()


def test_mixer_host_voice_is_not_heard_late_when_the_mic_started_first():
    """The mic ran 0.4 s before the broadcast pulled its first slot: that backlog is dropped
    down to the prime at the broadcast's first slot, so what the host says next is on air within the
    prime, not 0.4 s late for the rest of the show. A late chunk is counted as an underrun."""
    mixer = AudioMixer(48000)
    mixer.enable_host(prime_s=0.06, max_s=0.5)
    slot = 1920                                                    # 40 ms
    mixer.push_host(np.full((19200, 2), 0.1, np.float32))          # 400 ms before the first pull
    assert np.allclose(mixer.pull(slot).stereo, 0.1)
    assert mixer.host_dropped == 19200 - 2880                      # kept: the newest 60 ms
    mixer.push_host(np.full((slot, 2), 0.5, np.float32))           # the host speaks, now
    out = mixer.pull(slot).stereo[:, 0]
    assert np.allclose(out[:960], 0.1) and np.allclose(out[960:], 0.5)   # heard 20 ms later
    assert mixer.host_underruns == 0
    mixer.push_host(np.full((slot, 2), 0.5, np.float32))
    mixer.pull(slot)
    mixer.pull(slot)                                               # the next chunk is late
    assert mixer.host_underruns == 1 and mixer.host_prime_s == pytest.approx(0.10)


def test_mixer_host_jitter_buffer_grows_while_the_loop_keeps_running_dry():
    """A steady mic against a loop that takes a little more than it gets (its clock runs
    fast against the mic's): each underrun raises the prime a step, to the cap and no further,
    so the holes come ever more rarely instead of every few seconds."""
    mixer = AudioMixer(48000)
    mixer.enable_host(prime_s=0.06, max_s=0.6, max_prime_s=0.3)
    gaps = []
    for tick in range(3000):                                       # 120 s of 40 ms slots
        mixer.push_host(np.full((1900, 2), 0.5, np.float32))       # 1 % short of the slot
        before = mixer.host_underruns
        mixer.pull(1920)
        if mixer.host_underruns > before:
            gaps.append(tick)
    assert mixer.host_prime_s == pytest.approx(0.3)
    spacing = np.diff(gaps)
    assert len(gaps) >= 7 and spacing[-1] > 3 * spacing[0], gaps


def test_mixer_ducks_the_bed_under_the_host_and_mixes_over_speech():
    bed = np.full((48000, 2), 0.5, np.float32)
    mixer = AudioMixer(48000, bed=bed, bed_volume=0.4, duck=0.5)
    mixer.enable_host(gain=1.0, duck=0.25, prime_s=0.0)
    assert np.allclose(mixer.pull(2400).stereo[-1], 0.2)     # bed alone: 0.5 * 0.4
    mixer.push_host(np.full((9600, 2), 0.1, np.float32))
    mixer.pull(2400)                                          # ramp down
    out = mixer.pull(2400).stereo
    assert np.allclose(out, 0.5 * 0.4 * 0.25 + 0.1)           # ducked bed + host
    mixer.push(np.full(2400, 0.3, np.float32), "x", 1)
    out = mixer.pull(2400)
    assert np.allclose(out.stereo, 0.05 + 0.1 + 0.3) and out.speech.max() == pytest.approx(0.3)
    assert mixer.last_speech_at is not None


def test_mixer_host_input_is_thread_safe_under_a_concurrent_pusher():
    mixer = AudioMixer(48000)
    mixer.enable_host(max_s=0.2, prime_s=0.0)
    stop = threading.Event()

    def push():
        while not stop.is_set():
            mixer.push_host(np.full((960, 2), 0.1, np.float32))
    t = threading.Thread(target=push)
    t.start()
    try:
        for _ in range(300):
            chunk = mixer.pull(2400).stereo
            assert chunk.shape == (2400, 2) and chunk.max() <= 0.1 + 1e-6
    finally:
        stop.set()
        t.join()
    assert mixer._host_queued <= int(0.2 * 48000)


def test_host_voice_resamples_16k_mono_frames_to_48k_stereo():
    mixer = AudioMixer(48000)
    mixer.enable_host(max_s=2.0, prime_s=0.0)
    mixer.pull(480)                                  # started: what is pushed now is kept
    voice = HostVoice(mixer)
    tone = _tone(440, 16000, 1.0)
    for i in range(0, len(tone), 320):
        voice.push(tone[i:i + 320])
    out = mixer.pull(46000).stereo
    assert np.allclose(out[:, 0], out[:, 1])
    x = out[2000:, 0]
    spectrum = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spectrum) * 48000 / len(x) - 440) < 3
    assert np.sqrt(np.mean(x ** 2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.05)


def test_mic_settings_defaults_override_and_errors():
    s = mic_settings(None, "c.yaml")
    assert s == MicSettings(source="c.yaml") and not s.enabled and s.vad.threshold == 0.5
    s = mic_settings({"device": 3, "vad": {"threshold": 0.6, "min_silence_ms": 300}, "host_name": "Sam",
                      "asr": {"server": "wss://asr.example:8766", "token_env": "ASR_TOKEN"},
                      "mix_into_broadcast": True, "host_gain": 0.8, "duck": 0.3, "echo": "speakers"}, "c.yaml")
    assert (s.device, s.vad.threshold, s.vad.min_silence_ms, s.server, s.token_env, s.echo) == \
           (3, 0.6, 300, "wss://asr.example:8766", "ASR_TOKEN", "speakers")
    o = with_mic_override(s, "host.wav")
    assert o.enabled and o.device == "host.wav" and o.source == "command line"
    for data, key in (({"bogus": 1}, "mic.bogus"), ({"device": True}, "mic.device"),
                      ({"vad": {"min_silence_ms": 1}}, "mic.vad.min_silence_ms"),
                      ({"asr": {"server": "http://x"}}, "mic.asr.server"),
                      ({"asr": {"token_env": "a b"}}, "mic.asr.token_env"),
                      ({"echo": "loud"}, "mic.echo"), ({"enabled": "yes"}, "mic.enabled")):
        with pytest.raises(ConfigError) as err:
            mic_settings(data, "c.yaml")
        assert err.value.key == key and str(err.value).startswith("c.yaml: ")


def test_clean_transcript_and_echo_gate():
    assert clean_transcript("  [BLANK_AUDIO] ") == "" and clean_transcript("(music)") == ""
    assert clean_transcript("Hello (laughs) there.") == "Hello there."
    assert clean_transcript("...") == ""
    head, spk = EchoGate("headphones"), EchoGate("speakers", tail_s=0.3)
    assert not head.closed(True, 10.0, 10.0)
    assert spk.closed(True, None, 10.0) and spk.closed(False, 9.8, 10.0)
    assert not spk.closed(False, 9.6, 10.0) and not spk.closed(False, None, 10.0)


def test_tapped_source_passes_frames_through_and_notes_errors():
    class Src:
        closed = False
        finite = True

        def frames(self):
            yield np.ones(320, np.float32)
            raise OSError("device gone")

        def close(self):
            self.closed = True
    src = Src()
    tapped = TappedSource(src, lambda f: f * 0)
    it = tapped.frames()
    assert not next(it).any()
    with pytest.raises(OSError):
        next(it)
    assert tapped.ended.is_set() and isinstance(tapped.error, OSError) and tapped.finite
    tapped.close()
    assert src.closed


def test_onset_offsets_keep_only_recent_utterances_whose_final_never_came():
    offsets = OnsetOffsets(keep=4)
    for utt in range(1000):            # finals lost (a failing ASR): nothing is taken
        offsets.note(utt, utt * 0.5)
    assert len(offsets) == 4
    assert offsets.take(999) == 499.5 and offsets.take(10) is None
    assert len(offsets) == 3
