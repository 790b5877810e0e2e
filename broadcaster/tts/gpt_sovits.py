"""The GPT-SoVITS API server (`api_v2.py`), `POST /tts`, streamed.

Follows api_v2.py as shipped in the gpt-sovits-cpufast 0.1.0 wheel on PyPI (a fork that keeps
upstream GPT-SoVITS's api_v2 interface; upstream itself is not on PyPI): a JSON body
(TTS_Request) with text, text_lang, ref_audio_path, prompt_text, prompt_lang,
text_split_method, batch_size, speed_factor, media_type, streaming_mode (a bool, or 1-3 in
versions that grade it), top_k, top_p, temperature, seed. With streaming and media_type
"wav" the answer is a WAV header written by Python's `wave` (data size 0) and then raw int16
mono chunks at the model's rate (32 kHz for v2 models; the header says which); it is also read
as raw s16le at `sample_rate` should the header be missing. Errors are JSON with status 400.

The reference clip is a path on the server's disk (`ref_audio_path`): the server reads it
itself, so the scene's voice file must be there too (by default its absolute path here is
sent, which is right when the server runs on this machine). Its transcript is prompt_text.
The voice switch: `gpt_weights` / `sovits_weights` are loaded with GET /set_gpt_weights and
/set_sovits_weights?weights_path=... before the first sentence (and again after a failure).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlencode

from broadcaster.tts.engine import SpeechChunk, Synthesized, TTSError, collect
from broadcaster.tts.http_audio import (
    AudioRequest,
    ByteCounter,
    Timeouts,
    fetch,
    stream_audio,
)
from broadcaster.tts.pcm_stream import SniffedWav
from broadcaster.tts.voice import VoiceReference

GPT_SOVITS_V2_RATE = 32_000


class GptSovitsEngine:
    """url: the api_v2 server (http://host:9880)."""

    name = "gpt_sovits"

    def __init__(self, url: str, *, voice: VoiceReference | None = None,
                 ref_audio_path: str | None = None, text_lang: str | None = None,
                 prompt_lang: str | None = None, streaming_mode: bool | int = True,
                 text_split_method: str = "cut5", speed_factor: float = 1.0,
                 gpt_weights: str | None = None, sovits_weights: str | None = None,
                 sample_rate: int = GPT_SOVITS_V2_RATE, timeouts: Timeouts | None = None,
                 count: ByteCounter | None = None) -> None:
        if voice is None:
            raise TTSError("gpt_sovits: needs the scene's voice (reference + text)")
        self.base = url.rstrip("/")
        language = voice.language or "en"
        self.body = {"text_lang": text_lang or language,
                     "ref_audio_path": ref_audio_path or str(voice.path.resolve()),
                     "prompt_text": voice.text, "prompt_lang": prompt_lang or language,
                     "text_split_method": text_split_method, "batch_size": 1,
                     "speed_factor": speed_factor, "media_type": "wav",
                     "streaming_mode": streaming_mode}
        self.weights = [(endpoint, path) for endpoint, path in
                        (("set_gpt_weights", gpt_weights), ("set_sovits_weights", sovits_weights))
                        if path]
        self._switched = not self.weights
        self.sample_rate = sample_rate
        self.timeouts = timeouts or Timeouts()
        self.count = count

    def request(self, text: str) -> AudioRequest:
        return AudioRequest(self.base + "/tts", json.dumps({"text": text, **self.body}).encode("utf-8"),
                            "application/json")

    def switch_voice(self) -> None:
        """Load the configured GPT and SoVITS weights on the server."""
        for endpoint, path in self.weights:
            url = f"{self.base}/{endpoint}?{urlencode({'weights_path': path})}"
            fetch(self.name, AudioRequest(url, b"", "", method="GET"), self.timeouts, self.count)
        self._switched = True

    def stream(self, text: str) -> Iterator[SpeechChunk]:
        if not self._switched:
            self.switch_voice()
        try:
            yield from stream_audio(self.name, self.request(text), SniffedWav(self.sample_rate),
                                    self.timeouts, self.count)
        except TTSError:
            self._switched = not self.weights   # the server may have restarted: switch again
            raise

    def synthesize(self, text: str) -> Synthesized:
        return collect(self.stream(text))

    def close(self) -> None:
        pass
