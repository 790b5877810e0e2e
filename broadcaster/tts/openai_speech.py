"""Any server speaking OpenAI's `POST /v1/audio/speech`, streamed.

Follows the request schema of the openai Python SDK 3.60.0 (`SpeechCreateParams`): a JSON body
{model, input, voice, response_format, speed, instructions}; the key goes in
`Authorization: Bearer`. With response_format "pcm" the answer is raw signed 16-bit
little-endian mono at 24 kHz (OpenAI's documented PCM format; `sample_rate` overrides it for
a compatible server that streams PCM at another rate); with "wav" it is a WAV whose header
carries the rate (streamed servers leave the data size open). Both are read as they arrive,
so the first chunk goes on air while the server is still speaking the rest of the sentence.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator

from broadcaster.tts.engine import SpeechChunk, Synthesized, TTSError, collect
from broadcaster.tts.http_audio import (
    AudioRequest,
    ByteCounter,
    FixedRate,
    Timeouts,
    bearer,
    stream_audio,
)
from broadcaster.tts.pcm_stream import S16Decoder, WavStreamDecoder

OPENAI_PCM_RATE = 24_000
FORMATS = ("pcm", "wav")


class OpenAISpeechEngine:
    """url: the API base (http://host:port/v1); voice: a voice name the server knows."""

    name = "openai_speech"

    def __init__(self, url: str, *, model: str = "tts-1", voice: str = "alloy",
                 response_format: str = "pcm", speed: float | None = None,
                 instructions: str | None = None, sample_rate: int = OPENAI_PCM_RATE,
                 api_key_env: str = "OPENAI_API_KEY", timeouts: Timeouts | None = None,
                 count: ByteCounter | None = None) -> None:
        if response_format not in FORMATS:
            raise TTSError(f"openai_speech: response_format must be one of {', '.join(FORMATS)}")
        self.url = url.rstrip("/") + "/audio/speech"
        self.model, self.voice, self.response_format = model, voice, response_format
        self.speed, self.instructions, self.sample_rate = speed, instructions, sample_rate
        self.api_key_env = api_key_env
        self.timeouts = timeouts or Timeouts()
        self.count = count

    def request(self, text: str) -> AudioRequest:
        body = {"model": self.model, "input": text, "voice": self.voice,
                "response_format": self.response_format}
        if self.speed is not None:
            body["speed"] = self.speed
        if self.instructions:
            body["instructions"] = self.instructions
        return AudioRequest(self.url, json.dumps(body).encode("utf-8"), "application/json",
                            headers=bearer(os.environ.get(self.api_key_env)))

    def stream(self, text: str) -> Iterator[SpeechChunk]:
        decoder = (FixedRate(S16Decoder(), self.sample_rate) if self.response_format == "pcm"
                   else WavStreamDecoder())
        return stream_audio(self.name, self.request(text), decoder, self.timeouts, self.count)

    def synthesize(self, text: str) -> Synthesized:
        return collect(self.stream(text))

    def close(self) -> None:
        pass
