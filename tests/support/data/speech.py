"""Real speech: espeak-ng sentences joined by silences into a WAV (the mic/ASR tests), and a
TTS engine's line ready for broadcast with silence around it (the avatar tests)."""

from __future__ import annotations

import io
import subprocess
import wave
from pathlib import Path

import numpy as np

from broadcaster.tts import prepare_speech
from tests.support.media import write_wav

UTTERANCES = ["The weather today is sunny and warm in the city.",
              "Please tell me about the football game tonight."]
KEY_WORDS = [{"weather", "sunny", "city"}, {"football", "game", "tonight"}]


def espeak(text: str) -> tuple[np.ndarray, int]:
    """int16 mono samples and their rate (espeak-ng: 22050 Hz)."""
    wav = subprocess.run(["espeak-ng", "--stdout", text], check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return data, rate


def speech_with_pauses(path: Path, texts=UTTERANCES, lead_s: float = 1.0, pause_s: float = 1.2,
                       tail_s: float = 1.0, stereo: bool = False) -> tuple[Path, list[tuple[float, float]]]:
    """WAV of the texts separated by silence; returns it and each utterance's (start, end) s."""
    parts, spans, t = [], [], 0.0
    rate = 22050
    for i, text in enumerate(texts):
        gap = lead_s if i == 0 else pause_s
        parts.append(np.zeros(int(gap * rate), np.int16))
        t += gap
        data, rate = espeak(text)
        parts.append(data)
        spans.append((t, t + len(data) / rate))
        t += len(data) / rate
    parts.append(np.zeros(int(tail_s * rate), np.int16))
    mono = np.concatenate(parts)
    if stereo:
        return write_wav(path, np.stack([mono, mono], axis=1).reshape(-1), rate, 2), spans
    return write_wav(path, mono, rate), spans


def words(text: str) -> set[str]:
    return {w.strip(".,!?;:'\"").lower() for w in text.split()}


def broadcast_speech(engine, text: str, lead: int, tail: int) -> np.ndarray:
    """text spoken by engine (e.g. PiperEngine) as 48 kHz float32 samples, with lead and tail
    samples of silence."""
    out = engine.synthesize(text)
    return np.concatenate([np.zeros(lead, np.float32), prepare_speech(out.pcm, out.rate),
                           np.zeros(tail, np.float32)])
