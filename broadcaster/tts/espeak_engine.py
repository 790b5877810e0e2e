"""espeak-ng as a last-resort offline voice: robotic, but it speaks every language it has a
voice for (cmn-latn-pinyin for Mandarin) and is installed with the system packages.

Each sentence runs one espeak-ng process; the text goes in on stdin (never as an argument,
so a line starting with '-' is not read as an option) and a WAV comes back on stdout.
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np

from broadcaster.tts.engine import Synthesized, TTSError
from broadcaster.tts.pcm_stream import WavFormatError, WavStreamDecoder


class EspeakEngine:
    """espeak-ng with one of its voices (`espeak-ng --voices` lists them), e.g. cmn, en-us."""

    name = "espeak-ng"

    def __init__(self, voice: str, *, words_per_minute: int = 175, timeout_s: float = 10.0) -> None:
        self.program = shutil.which("espeak-ng")
        if self.program is None:
            raise TTSError("espeak-ng is not installed (apt-get install espeak-ng)")
        self.voice = voice
        self._wpm = words_per_minute
        self._timeout_s = timeout_s
        self._run("")  # an unknown voice fails here, at load, not on air

    def _run(self, text: str) -> bytes:
        cmd = [self.program, "-v", self.voice, "-s", str(self._wpm), "--stdout"]
        try:
            done = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True,
                                  timeout=self._timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise TTSError(f"espeak-ng took over {self._timeout_s:g} s") from None
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", "replace").strip()
            raise TTSError(f"espeak-ng voice {self.voice!r} failed: {err or done.returncode}")
        return done.stdout

    def synthesize(self, text: str) -> Synthesized:
        decoder = WavStreamDecoder()
        try:
            pcm = decoder.feed(self._run(text))
        except WavFormatError as exc:
            raise TTSError(f"espeak-ng returned no usable WAV: {exc}") from exc
        if decoder.rate is None or not np.any(pcm):
            raise TTSError(f"espeak-ng said nothing for {text[:40]!r}")
        return Synthesized(pcm=pcm, rate=decoder.rate, engine=self.name)

    def close(self) -> None:
        pass
