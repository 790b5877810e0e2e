"""The built-in puppet on a real ONNX Runtime session, driven by real Piper speech."""
import logging

import numpy as np
import pytest

from broadcaster.avatar.puppet import PuppetAnchor
from tests.support.data.speech import broadcast_speech

FPS = 20
SPF = 48_000 // FPS


@pytest.fixture(scope="module")
def speech(piper):
    return broadcast_speech(piper, "Good evening, this is the late news, and here are the headlines.",
                            SPF * 10, SPF * 10)


def region(frame, box):
    x0, y0, x1, y1 = box
    return frame[y0:y1, x0:x1, :3].astype(np.float32)


def test_output_shape_and_provider_logged(caplog):
    with caplog.at_level(logging.INFO):
        p = PuppetAnchor(333, 250)
    f = p.render(0, np.zeros(SPF, np.float32))
    assert f.shape == (250, 333, 4) and f.dtype == np.uint8
    assert f[..., 3].max() == 255 and f[0, 0, 3] == 0  # opaque character, transparent corner
    assert any("runs on CPUExecutionProvider" in r.getMessage() or "runs on CUDAExecutionProvider" in r.getMessage()
               for r in caplog.records)


def test_mouth_follows_speech_energy_and_is_still_in_silence(speech):
    p = PuppetAnchor(640, 480, idle_motion=False, seed=3)
    box = p.mouth_box
    frames, energy = [], []
    for i in range(len(speech) // SPF):
        chunk = speech[i * SPF:(i + 1) * SPF]
        frames.append(region(p.render(i, chunk), box))
        energy.append(float(np.sqrt(np.mean(chunk ** 2))))
    idle = frames[0]
    change = np.array([np.abs(f - idle).mean() for f in frames])
    energy = np.array(energy)
    # still while silent (lead-in; eyes may blink but the mouth region does not move)
    assert change[:10].max() == 0.0
    # moves while speech is on air
    loud = energy > 0.05
    assert loud.sum() > 20
    assert change[loud].mean() > 8.0
    # mouth change tracks audio energy frame by frame
    assert np.corrcoef(change, energy)[0, 1] > 0.6
    # and closes again after the line (release within a few frames)
    assert change[-5:].max() < 0.5


def test_idle_motion_is_small_next_to_talking(speech):
    p = PuppetAnchor(640, 480, seed=1)
    box = p.mouth_box
    silent = [region(p.render(i, np.zeros(SPF, np.float32)), box) for i in range(40)]
    idle_change = np.mean([np.abs(silent[i + 1] - silent[i]).mean() for i in range(39)])
    talk = [region(p.render(100 + i, speech[(10 + i) * SPF:(11 + i) * SPF]), box) for i in range(40)]
    talk_change = np.mean([np.abs(talk[i + 1] - talk[i]).mean() for i in range(39)])
    assert 0.0 < idle_change < talk_change / 4


def test_blinking_changes_the_eyes_and_happens_on_its_own():
    p = PuppetAnchor(640, 480, idle_motion=False)
    eyes = p.eyes_box
    open_eyes = region(p.render_params(np.zeros(7, np.float32)), eyes)
    closed = region(p.render_params(np.array([0, 0, 1, 0, 0, 0, 0], np.float32)), eyes)
    assert np.abs(open_eyes - closed).mean() > 10.0
    mouth = p.mouth_box
    assert np.abs(region(p.render_params(np.zeros(7, np.float32)), mouth)
                  - region(p.render_params(np.array([0, 0, 1, 0, 0, 0, 0], np.float32)), mouth)).max() == 0
    # the schedule blinks by itself: within 8 s some frames have the lids down, most do not
    blinks = [p.params_for(i, np.zeros(SPF, np.float32))[2] for i in range(8 * FPS)]
    assert 1 <= sum(b > 0.5 for b in blinks) <= 16


def test_reset_returns_to_idle_within_one_frame(speech):
    a = PuppetAnchor(640, 480, seed=5)
    b = PuppetAnchor(640, 480, seed=5)
    for i in range(30):
        a.render(i, speech[(12 + i) * SPF:(13 + i) * SPF])
    assert a.last_params[0] > 0.3  # mouth open mid-line
    a.reset()
    silent = np.zeros(SPF, np.float32)
    got = a.render(30, silent)
    want = b.render(30, silent)
    assert np.array_equal(got, want)
    assert a.last_params[0] == 0.0


def test_missing_assets_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="geometry.json"):
        PuppetAnchor(640, 480, assets=tmp_path)
