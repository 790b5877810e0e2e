"""Off air nothing that should be heard is spent: the conversation takes no new turn and the
line being spoken when the ingest dropped is spoken again, from its beginning, once on air.
The mixer and the hold on their own, then the real broadcaster against a real nginx-rtmp
that is stopped mid-reply, the recording after its return transcribed with Whisper."""

import re
import signal
import time

import av
import numpy as np

from broadcaster.dialogue.offair import OffAirHold
from broadcaster.media.mixer import AudioMixer
from broadcaster.stages import AirState
from tests.support.broadcaster_proc import (
    FAST_RECONNECT,
    healthz,
    read_turns,
    start_broadcaster,
    wait_on_air,
    wait_turns,
    write_config,
)
from tests.support.http import http_json
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import stop

KEY = "offair_key_77c2b1"
RATE = 48000
SLOT = RATE // 20


def _tone(value: float, seconds: float) -> np.ndarray:
    return np.full(int(RATE * seconds), value, np.float32)


def _speech_values(mixer: AudioMixer, slots: int) -> list[float]:
    """The first speech sample of each of the next slots (0.0: silence)."""
    return [float(mixer.pull(SLOT).speech[0]) for _ in range(slots)]


def test_held_speech_waits_and_the_cut_line_starts_again_from_its_beginning():
    mixer = AudioMixer(RATE)
    mixer.push(_tone(0.125, 0.2), "first sentence", 1)       # line 1: two sentences
    mixer.push(_tone(0.25, 0.2), "second sentence", 1)
    mixer.push(_tone(0.5, 0.1), "next line", 2)
    assert _speech_values(mixer, 5) == [0.125] * 4 + [0.25]   # mid second sentence
    mixer.hold_speech(True)
    assert _speech_values(mixer, 10) == [0.0] * 10         # held: silence, nothing consumed
    assert not mixer.idle()                                # the turn is not over
    mixer.hold_speech(False)
    assert _speech_values(mixer, 12) == [0.125] * 4 + [0.25] * 4 + [0.5] * 2 + [0.0] * 2
    assert mixer.idle()


def test_a_hold_between_lines_repeats_nothing():
    mixer = AudioMixer(RATE)
    mixer.push(_tone(0.125, 0.1), "done", 1)
    assert _speech_values(mixer, 2) == [0.125, 0.125]
    mixer.push(_tone(0.375, 0.1), "queued", 2)
    mixer.hold_speech(True)
    mixer.hold_speech(False)
    assert _speech_values(mixer, 3) == [0.375, 0.375, 0.0]


def test_the_hold_follows_the_air_state_and_holds_the_floor():
    mixer = AudioMixer(RATE)
    hold = OffAirHold(mixer)
    mixer.push(_tone(0.125, 0.1), "line", 1)
    assert hold.floor_held() and _speech_values(mixer, 1) == [0.0]    # not yet on air
    hold.on_air_state(AirState(True, 1.0))
    assert not hold.floor_held() and _speech_values(mixer, 1) == [0.125]
    hold.on_air_state(AirState(False, 2.0))
    assert hold.floor_held() and _speech_values(mixer, 1) == [0.0]
    hold.on_air_state(AirState(True, 3.0))
    assert _speech_values(mixer, 3) == [0.125, 0.125, 0.0]                # from the beginning


CUT = ("Good evening, this is the first part of a long answer about live video, and it goes on "
       "for a while so that the ingest can fail in the middle of it. The final words of this "
       "answer are purple elephants dancing.")
QUEUED = "Meanwhile a viewer asked about the weather in Lisbon."


def _recording_text(path, asr) -> str:
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        pcm = [out.to_ndarray().reshape(-1) for frame in container.decode(audio=0)
               for out in resampler.resample(frame)]
    audio = np.concatenate(pcm)
    # Whisper takes at most 30 s at a time
    return " ".join(asr.decode(audio[i:i + 16000 * 28]).text for i in range(0, len(audio), 16000 * 28))


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z]+", text.lower()))


def test_a_reply_cut_by_an_outage_is_heard_in_full_after_it(nginx, tmp_path, asr):
    port = free_port()
    config = write_config(tmp_path / "config.yaml", control={"port": port},
                          output={"url": nginx.url(KEY), "reconnect": FAST_RECONNECT})
    proc = start_broadcaster("run", "-c", str(config), "--size", "320x240", "--fps", "15")
    try:
        wait_on_air(port)
        status, _ = http_json("POST", f"http://127.0.0.1:{port}/say", {"text": CUT})
        assert status == 202
        wait_turns(port, lambda t: t and t[0]["ms"]["total_to_muxed"] is not None, timeout=30)
        time.sleep(2.5)                       # well into the line
        nginx.stop()
        wait_for(lambda: healthz(port)[0] == 503, 15, what="off air")
        status, _ = http_json("POST", f"http://127.0.0.1:{port}/say", {"text": QUEUED})
        assert status == 202
        time.sleep(2.0)
        assert len(read_turns(port)) == 1, "a new turn started while off air"
        nginx.start()
        wait_on_air(port)
        # a turn's `spoken` is filled in when it ends, once its audio has played
        turns = wait_turns(port, lambda t: len(t) == 2 and t[1]["spoken"], timeout=90)
        assert not turns[0]["interrupted"], turns
        time.sleep(1.0)                       # the last slots through the encoder
    finally:
        _, err = stop(proc, signal.SIGTERM)
    assert proc.returncode == 0, err[-3000:]
    assert KEY not in err
    recordings = nginx.recordings(KEY)
    assert len(recordings) == 2, recordings
    before = _words(_recording_text(recordings[0], asr))
    assert "good evening" in before and "purple" not in before, before   # cut mid-line
    after = _words(_recording_text(recordings[-1], asr))
    assert "good evening" in after, after                   # the cut line from its beginning
    assert "final words of this answer are purple" in after, after   # to its end
    assert "lisbon" in after, after                         # the question asked while off air

