"""CosyVoice's FastAPI server (runtime/python/fastapi/server.py in FunAudioLLM/CosyVoice).

Follows that file as of commit 1cfc5dd0 (read from the repository): the routes are GETs
whose parameters are form fields, so the request is a GET with a multipart body:
  /inference_sft            tts_text, spk_id                 (a built-in or fine-tuned speaker)
  /inference_zero_shot      tts_text, prompt_text, prompt_wav (the clip, uploaded as a file)
  /inference_cross_lingual  tts_text, prompt_wav
each answered as a StreamingResponse of raw int16 mono PCM (the model's float output times
2^15), one piece per generated segment, no header, at the model's rate: 22050 Hz for
CosyVoice-300M, 24000 Hz for CosyVoice2 (set `sample_rate`). Forks that add /stream/ routes
with float32 output are not covered.
"""
from __future__ import annotations

from collections.abc import Iterator

from broadcaster.tts.engine import SpeechChunk, Synthesized, TTSError, collect
from broadcaster.tts.http_audio import (
    AudioRequest,
    ByteCounter,
    FixedRate,
    Timeouts,
    multipart,
    stream_audio,
)
from broadcaster.tts.pcm_stream import S16Decoder
from broadcaster.tts.voice import VoiceReference

COSYVOICE_300M_RATE = 22_050
MODES = ("zero_shot", "cross_lingual", "sft")


class CosyVoiceEngine:
    """url: the server (http://host:50000); mode: zero_shot (the scene's voice and its
    transcript), cross_lingual (the voice only), sft (a built-in or fine-tuned spk_id)."""

    name = "cosyvoice"

    def __init__(self, url: str, *, mode: str = "zero_shot", voice: VoiceReference | None = None,
                 spk_id: str | None = None, sample_rate: int = COSYVOICE_300M_RATE,
                 timeouts: Timeouts | None = None, count: ByteCounter | None = None) -> None:
        if mode not in MODES:
            raise TTSError(f"cosyvoice: mode must be one of {', '.join(MODES)}")
        if mode == "sft" and not spk_id:
            raise TTSError("cosyvoice: mode sft needs spk_id")
        if mode != "sft" and voice is None:
            raise TTSError(f"cosyvoice: mode {mode} needs the scene's voice (reference + text)")
        self.url = f"{url.rstrip('/')}/inference_{mode}"
        self.mode, self.voice, self.spk_id = mode, voice, spk_id
        self.sample_rate = sample_rate
        self.timeouts = timeouts or Timeouts()
        self.count = count

    def request(self, text: str) -> AudioRequest:
        fields = [("tts_text", text)]
        files = []
        if self.mode == "sft":
            fields.append(("spk_id", self.spk_id))
        else:
            if self.mode == "zero_shot":
                fields.append(("prompt_text", self.voice.text))
            files.append(("prompt_wav", self.voice.path.name, self.voice.audio))
        body, content_type = multipart(fields, files)
        return AudioRequest(self.url, body, content_type, method="GET")

    def stream(self, text: str) -> Iterator[SpeechChunk]:
        return stream_audio(self.name, self.request(text), FixedRate(S16Decoder(), self.sample_rate),
                            self.timeouts, self.count)

    def synthesize(self, text: str) -> Synthesized:
        return collect(self.stream(text))

    def close(self) -> None:
        pass
