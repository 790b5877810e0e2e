"""Speech -> puppet -> H.264/AAC file -> decode: the mouth moves with the audio that is on air.

A minimal frame-slot player stands in for the mixer (the lead's): it hands each video frame
exactly the samples of its slot, which drive both the lips and the audio track.
"""
import asyncio

import av
import numpy as np

from broadcaster.avatar import PuppetAnchor
from broadcaster.tts import PiperEngine, SpeechStage

FPS = 20
SPF = 48_000 // FPS
W, H = 320, 240


class SlotPlayer:
    def __init__(self):
        self.buf = np.zeros(0, np.float32)

    def push(self, pcm, caption, line_id):
        self.buf = np.concatenate([self.buf, pcm])

    def cut(self):
        self.buf = np.zeros(0, np.float32)

    def pull(self) -> np.ndarray:
        out = np.zeros(SPF, np.float32)
        n = min(SPF, len(self.buf))
        out[:n], self.buf = self.buf[:n], self.buf[n:]
        return out


def test_decoded_mouth_motion_follows_decoded_audio(tmp_path):
    player = SlotPlayer()
    stage = SpeechStage(PiperEngine(), player)
    try:
        asyncio.run(stage.say("Good evening. The weather tonight is calm and clear.", line_id=1))
    finally:
        stage.close()
    lead_in = 10
    n_frames = lead_in + len(player.buf) // SPF + 10
    anchor = PuppetAnchor(W, H, fps=FPS, idle_motion=False)
    path = tmp_path / "anchor.mp4"
    bg = np.full((H, W, 3), (40, 70, 120), np.float32)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "18"})
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        aus = out.add_stream("aac", rate=48_000, layout="mono")
        for i in range(n_frames):
            speech = player.pull() if i >= lead_in else np.zeros(SPF, np.float32)
            rgba = anchor.render(i, speech)
            a = rgba[..., 3:4] / 255.0
            rgb = (rgba[..., :3] * a + bg * (1 - a)).astype(np.uint8)
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts = i
            out.mux(vs.encode(vf))
            af = av.AudioFrame.from_ndarray(speech.reshape(1, -1), format="flt", layout="mono")
            af.sample_rate, af.pts = 48_000, i * SPF
            out.mux(aus.encode(af))
        out.mux(vs.encode(None))
        out.mux(aus.encode(None))

    x0, y0, x1, y1 = anchor.mouth_box
    with av.open(str(path)) as inp:
        frames = [f.to_ndarray(format="rgb24")[y0:y1, x0:x1].astype(np.float32) for f in inp.decode(video=0)]
    with av.open(str(path)) as inp:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in inp.decode(audio=0)])
    # AAC priming delay is removed by the decoder's skip_samples; align to video by pts anyway
    assert len(frames) == n_frames
    energy = np.array([np.sqrt(np.mean(audio[i * SPF:(i + 1) * SPF] ** 2)) if (i + 1) * SPF <= len(audio) else 0.0
                       for i in range(n_frames)])
    change = np.array([np.abs(f - frames[0]).mean() for f in frames])
    assert energy[lead_in:-10].max() > 0.1  # the speech is in the decoded audio
    assert change[:lead_in].max() < 1.0  # still while silent (codec noise only)
    assert change[lead_in:-10].max() > 10.0
    assert np.corrcoef(change, energy)[0, 1] > 0.6
