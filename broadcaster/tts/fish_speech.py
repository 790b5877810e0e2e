"""Fish Speech's own API server (`tools/api_server.py`), `POST /v1/tts`, streamed.

Follows the server code shipped in the fish-speech 0.1.0 wheel on PyPI
(fish_speech/utils/schema.py ServeTTSRequest, tools/server/views.py, api_utils.py): the body
is msgpack or JSON (JSON here; a reference clip's bytes travel base64-encoded, which the
schema's validator decodes for strings over 255 characters) with text, chunk_length (100-300),
format, references [{audio, text}], reference_id, normalize, streaming, use_memory_cache,
top_p, temperature, repetition_penalty, seed. Streaming only works with format "wav"; the
server then yields int16 mono segments at its decoder's rate (44.1 kHz for the released
models). That version's streaming path drops its own WAV header (it is not `bytes`, and
inference_async passes only bytes), so the answer is read as a WAV when it starts with
RIFF and as raw s16le at `sample_rate` otherwise. An API key (`--api-key`) goes in
`Authorization: Bearer`.

The scene's voice (reference clip + transcript) is sent with every request; with
use_memory_cache "on" the server encodes it once and reuses it by its hash. A voice stored on
the server is used by `reference_id` instead.
"""
from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator

from broadcaster.tts.engine import SpeechChunk, Synthesized, TTSError, collect
from broadcaster.tts.http_audio import (
    AudioRequest,
    ByteCounter,
    Timeouts,
    bearer,
    stream_audio,
)
from broadcaster.tts.pcm_stream import SniffedWav
from broadcaster.tts.voice import VoiceReference

FISH_RATE = 44_100


class FishSpeechEngine:
    """url: the server's address (http://host:8080); voice: the scene's reference clip."""

    name = "fish_speech"

    def __init__(self, url: str, *, voice: VoiceReference | None = None,
                 reference_id: str | None = None, chunk_length: int = 200,
                 sample_rate: int = FISH_RATE, temperature: float | None = None,
                 top_p: float | None = None, seed: int | None = None,
                 api_key_env: str = "FISH_SPEECH_API_KEY", timeouts: Timeouts | None = None,
                 count: ByteCounter | None = None) -> None:
        if voice is None and not reference_id:
            raise TTSError("fish_speech: needs the scene's voice (reference + text) or a reference_id")
        self.url = url.rstrip("/") + "/v1/tts"
        self.voice, self.reference_id = voice, reference_id
        self.chunk_length, self.sample_rate = chunk_length, sample_rate
        self.sampling = {k: v for k, v in (("temperature", temperature), ("top_p", top_p),
                                           ("seed", seed)) if v is not None}
        self.api_key_env = api_key_env
        self.timeouts = timeouts or Timeouts()
        self.count = count
        self._references = ([{"audio": base64.b64encode(voice.audio).decode("ascii"),
                              "text": voice.text}] if voice is not None and not reference_id else [])

    def request(self, text: str) -> AudioRequest:
        body = {"text": text, "chunk_length": self.chunk_length, "format": "wav",
                "references": self._references, "reference_id": self.reference_id,
                "normalize": True, "streaming": True, "use_memory_cache": "on", **self.sampling}
        return AudioRequest(self.url, json.dumps(body).encode("utf-8"), "application/json",
                            headers=bearer(os.environ.get(self.api_key_env)))

    def stream(self, text: str) -> Iterator[SpeechChunk]:
        return stream_audio(self.name, self.request(text), SniffedWav(self.sample_rate),
                            self.timeouts, self.count)

    def synthesize(self, text: str) -> Synthesized:
        return collect(self.stream(text))

    def close(self) -> None:
        pass
