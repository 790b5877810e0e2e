"""Benchmark the host-mic ASR path on espeak-ng speech (run: PYTHONPATH=. python tools/bench_asr.py).

Prints: VAD end -> final transcript latency (p50/max), partial latency while speaking,
uplink kbit/s of Opus vs raw PCM for the same speech, and word error rate (against the
texts spoken) of the local PCM path and of the remote Opus path through a real asr-serve
on loopback. Latencies are measured from the moment the audio/VAD event is available to
the text (the VAD hangover, min_silence_ms, comes on top for "end of speech").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broadcaster.asr import protocol as P  # noqa: E402
from broadcaster.asr.client import RemoteAsrClient  # noqa: E402
from broadcaster.asr.streaming import transcribe_frames  # noqa: E402
from broadcaster.asr.whisper import WhisperAsr  # noqa: E402
from broadcaster.mic.capture import WavFileSource  # noqa: E402
from broadcaster.mic.vad import VadConfig  # noqa: E402
from tests.support.data.speech import speech_with_pauses  # noqa: E402
from tests.support.servers.asr import TOKEN, RunningServer  # noqa: E402

SENTENCES = [
    "The weather today is sunny and warm in the city.",
    "Please tell me about the football game tonight.",
    "Can you hear me now? I want to ask a question about the stream.",
    "What is your favourite colour and why do you like it?",
    "Let us talk about music for a few minutes.",
    "Thank you for watching, see you tomorrow morning.",
    "How many people are watching this show right now?",
    "Stop for a moment and read the next message.",
]


def make_wav(path: Path, pause_s: float = 1.2) -> list[float]:
    """The SENTENCES spoken by espeak-ng with pause_s of silence around each; returns the
    second at which each one starts."""
    _, spans = speech_with_pauses(path, SENTENCES, lead_s=pause_s, pause_s=pause_s, tail_s=pause_s)
    return [start for start, _ in spans]


def norm(text: str) -> list[str]:
    return [w for w in (t.strip(".,!?;:\"").lower().replace("favorite", "favourite").replace("color", "colour")
                        for t in text.split()) if w]


def wer(refs: list[str], hyps: list[str]) -> float:
    errors = words = 0
    for r, h in zip(refs, hyps + [""] * (len(refs) - len(hyps))):
        r, h = norm(r), norm(h)
        d = np.arange(len(h) + 1)
        for i, rw in enumerate(r, 1):
            prev, d[0] = d.copy(), i
            for j, hw in enumerate(h, 1):
                d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (rw != hw))
        errors += int(d[len(h)])
        words += len(r)
    return 100.0 * errors / max(words, 1)


def remote(asr, frames, bitrate) -> tuple[list[dict], RemoteAsrClient]:
    server = RunningServer(asr)
    msgs: list[dict] = []

    async def go():
        client = RemoteAsrClient(server.url, TOKEN, msgs.append, drop_when_full=False, bitrate=bitrate)
        await client.start()
        await client.wait_ready(5)
        for f in frames:
            await client.send_frame(f)
        await client.finish(120)
        return client

    client = server.run(go(), 120)
    server.close()
    return msgs, client


class _PacedFrames:
    """A source that releases pre-decoded frames every 20 ms (like a live mic)."""

    finite = True

    def __init__(self, frames):
        self._frames, self.t0 = frames, None

    def frames(self):
        self.t0 = time.monotonic()
        for i, f in enumerate(self._frames):
            delay = self.t0 + i * 0.02 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield f

    def close(self):
        pass


def realtime_local(asr, frames, vad, starts: list[float]) -> None:
    from broadcaster.asr.streaming import MicPipeline
    src, got, onsets = _PacedFrames(frames), [], []
    pipe = MicPipeline(src, asr, lambda t: got.append((time.monotonic(), t)), vad_config=vad,
                       on_onset=onsets.append).start()
    pipe.join(120)
    fin = [(w, t) for w, t in got if t.kind == "final"]
    eos = np.array([(w - (src.t0 + t.speech_end)) * 1000 for w, t in fin])
    vad_end = np.array([t.latency_s * 1000 for _, t in fin])
    part = np.array([t.latency_s * 1000 for _, t in got if t.kind == "partial"])
    on = np.array([(o.wall - (src.t0 + s)) * 1000 for o, s in zip(onsets, starts)])
    print(f"real time: speech start -> on_onset callback p50 {np.median(on):.0f} ms, max {on.max():.0f} ms "
          f"({len(onsets)} onsets; VAD windows are 32 ms)")
    print(f"real time, threaded pipeline: end of speech -> final p50 {np.median(eos):.0f} ms "
          f"(VAD end -> final p50 {np.median(vad_end):.0f} ms), partial latency p50 {np.median(part):.0f} ms, "
          f"max {part.max():.0f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model name or folder (default: packaged tiny.en)")
    ap.add_argument("--realtime", action="store_true",
                    help="also run the threaded MicPipeline paced in real time (+35 s)")
    ap.add_argument("--min-silence-ms", type=float, default=VadConfig().min_silence_ms,
                    help="VAD hangover before an utterance ends")
    ap.add_argument("--verbose", action="store_true", help="print every transcript")
    ap.add_argument("--bitrate", type=int, default=P.OPUS_BITRATE, help="Opus bitrate (bit/s)")
    args = ap.parse_args()
    asr = WhisperAsr(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        starts = make_wav(path)
        frames = list(WavFileSource(str(path)).frames())
    secs = len(frames) * 0.02
    vad = VadConfig(min_silence_ms=args.min_silence_ms)

    trs = list(transcribe_frames(iter(frames), asr, vad))
    finals = [t for t in trs if t.kind == "final"]
    partials = [t for t in trs if t.kind == "partial"]
    fl = np.array([t.latency_s * 1000 for t in finals])
    pl = np.array([t.latency_s * 1000 for t in partials])
    print(f"speech: {len(SENTENCES)} espeak-ng sentences, {secs:.1f} s; VAD found {len(finals)} utterances")
    print(f"VAD end -> final transcript: p50 {np.median(fl):.0f} ms, max {fl.max():.0f} ms "
          f"(+ VAD hangover {vad.min_silence_ms:.0f} ms from the end of speech)")
    print(f"partial transcript latency while speaking: p50 {np.median(pl):.0f} ms, max {pl.max():.0f} ms, "
          f"{len(partials)} partials (every 0.6 s of speech)")

    # Same finals through faster-whisper's plain transcribe() (30 s window) for comparison.
    from faster_whisper import WhisperModel
    plain = WhisperModel(asr.model_path, device="cpu", compute_type="int8", cpu_threads=2)
    t_plain = []
    pcm = np.concatenate(frames)
    for t in finals[:3]:
        t0 = time.perf_counter()
        list(plain.transcribe(pcm[int(t.start * 16000):int(t.end * 16000)], beam_size=1,
                              temperature=0.0, without_timestamps=True, condition_on_previous_text=False)[0])
        t_plain.append((time.perf_counter() - t0) * 1000)
    print(f"(plain faster-whisper transcribe() of one utterance: ~{np.median(t_plain):.0f} ms)")

    if args.realtime:
        realtime_local(asr, frames, vad, starts)

    msgs, client = remote(asr, frames, args.bitrate)
    rfinals = [m["text"] for m in msgs if m["type"] == "final"]
    opus_kbps = client.wire_bytes_sent * 8 / 1000 / secs
    payload_kbps = client.bytes_sent * 8 / 1000 / secs
    pcm_kbps = len(frames) * (P.HEADER.size + 640 + 8) * 8 / 1000 / secs
    print(f"uplink: Opus {opus_kbps:.1f} kbit/s on the WebSocket ({payload_kbps:.1f} payload incl. 5-byte "
          f"header; 16 kbit/s VBR target) vs raw PCM {pcm_kbps:.1f} kbit/s (256 audio + framing)")
    w_local = wer(SENTENCES, [t.text for t in finals])
    w_remote = wer(SENTENCES, rfinals)
    print(f"WER vs spoken text: local PCM {w_local:.1f} %, remote Opus {w_remote:.1f} % "
          f"(difference {w_remote - w_local:+.1f} points; target <= +2)")
    if args.verbose:
        for ref, loc, rem in zip(SENTENCES, [t.text for t in finals], rfinals):
            print(f"  ref {ref}\n  pcm {loc}\n  opus {rem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
