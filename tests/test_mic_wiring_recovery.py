"""A mic that fails while on air: the broadcast goes on, the mic is reopened and still works.

The failing device is the one stand-in here (no sound card can be unplugged on this machine):
it plays real speech frames from a WAV, then raises like PortAudio does on unplug. Everything
else is real: the Station, its control loop, VAD, tiny.en, Piper, the recording."""

from __future__ import annotations

from dataclasses import replace

from broadcaster.backoff import Backoff
from broadcaster.config import load_config
from broadcaster.mic.capture import WavFileSource
from broadcaster.mic.host import HostMic, MicSettings
from broadcaster.scene import load_scene, scene_path
from broadcaster.station import Station
from tests.support.data.speech import speech_with_pauses, words


class UnpluggedAfter:
    """Frames of a real file, then the error a vanished sound card raises."""

    finite = True

    def __init__(self, path, frames: int):
        self.inner, self.frames_left = WavFileSource(str(path), realtime=True), frames

    def frames(self):
        for frame in self.inner.frames():
            if self.frames_left == 0:
                raise OSError("PortAudio: Stream is stopped (device unplugged)")
            self.frames_left -= 1
            yield frame

    def close(self):
        self.inner.close()


def test_a_mic_failing_on_air_is_reopened_and_the_broadcast_goes_on(tmp_path):
    noise, _ = speech_with_pauses(tmp_path / "first.wav", ["testing one two"], lead_s=0.2, tail_s=2.0)
    question, _ = speech_with_pauses(tmp_path / "q.wav", ["What is the weather like in Paris today?"],
                                     lead_s=0.5, tail_s=3.0)
    opened = []

    def opener(settings):
        opened.append(len(opened))
        return UnpluggedAfter(noise, 25) if len(opened) == 1 else WavFileSource(str(question), realtime=True)

    config = load_config(None)
    config = replace(config, output=replace(config.output, url=str(tmp_path / "out.flv")),
                     control=replace(config.control, port=0))
    scene = load_scene(scene_path(config.scenes_dir, "default")).with_canvas(320, 180, 20)
    station = Station(config, scene, duration_s=9, responder="read-aloud")
    mic = HostMic(station, MicSettings(enabled=True, device="flaky"), backoff=Backoff(0.3, 2.0, 1.0),
                  opener=opener)
    assert station.run() == 0
    assert station.broadcast.frame_index == 180                  # the whole 9 s went out
    assert len(opened) == 2 and mic.restarts == 1 and mic.state == "ended"
    host = [t for t in station.live.turns.recent() if t["kind"] == "host"]
    assert host and {"weather", "paris"} <= words(host[0]["text"]), host
    assert host[0]["ms"]["total_to_muxed"] is not None
