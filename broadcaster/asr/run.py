"""Entry points the CLI calls: `broadcaster asr FILE [--server URL]` and `broadcaster asr-serve`."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

from broadcaster.asr.protocol import TOKEN_ENV
from broadcaster.asr.server import serve_main  # noqa: F401 - re-exported for the CLI

log = logging.getLogger(__name__)



def format_transcript(kind: str, utt: int, start: float, end: float, text: str, latency_ms: float) -> str:
    label = "FINAL  " if kind == "final" else "partial"
    return f"[{start:7.2f}s - {end:7.2f}s] {label} #{utt}: {text}  ({latency_ms:.0f} ms)"


def transcribe_file_main(path: str, server_url: str | None = None, *, token: str | None = None,
                         model: str | None = None, language: str = "en", turn_end=None,
                         vad_config=None, out=None) -> int:
    """Print partial and final transcripts of an audio file through VAD + ASR, locally or
    through a remote asr-serve (token: argument or $BROADCASTER_ASR_TOKEN). 0 = ok, 2 = bad
    input/config, 1 = server/connection failure. model, language, turn_end (a TurnEndConfig
    or None) and vad_config apply to local ASR; a server uses its own."""
    out = out or sys.stdout
    from broadcaster.mic.capture import WavFileSource
    try:
        source = WavFileSource(path, realtime=False)
    except ValueError as exc:
        print(f"asr: {exc}", file=out)
        return 2
    try:
        if server_url is None:
            from broadcaster.asr.streaming import transcribe_frames
            from broadcaster.asr.whisper import WhisperAsr
            from broadcaster.mic.vad import VadConfig
            try:
                asr = WhisperAsr(model, language=language)
            except (ValueError, RuntimeError) as exc:
                print(f"asr: {exc}", file=out)
                return 2
            for tr in transcribe_frames(source.frames(), asr, vad_config or VadConfig(), turn_end=turn_end):
                print(format_transcript(tr.kind, tr.utt_id, tr.start, tr.end, tr.text, tr.latency_s * 1000),
                      file=out, flush=True)
            return 0
        token = token or os.environ.get(TOKEN_ENV)
        if not token:
            print(f"asr: a token is needed for --server (set ${TOKEN_ENV})", file=out)
            return 2
        return asyncio.run(_remote_file(source, server_url, token, out))
    finally:
        source.close()


async def _remote_file(source, url: str, token: str, out) -> int:
    from broadcaster.asr.client import RemoteAsrClient
    from broadcaster.redact import redact

    def on_message(msg: dict) -> None:
        if msg["type"] in ("partial", "final"):
            print(format_transcript(msg["type"], msg["utt"], msg["start"], msg["end"], msg["text"],
                                    msg["latency_ms"]), file=out, flush=True)
        elif msg["type"] == "error":
            print(f"asr: server error {msg.get('code')}: {redact(str(msg.get('message')))}", file=out)

    client = RemoteAsrClient(url, token, on_message, drop_when_full=False)
    await client.start()
    t0, n = time.monotonic(), 0
    try:
        await client.wait_ready(10.0)
        for frame in source.frames():
            await client.send_frame(frame)
            n += 1
        await client.finish(timeout=60.0)
    except Exception as exc:
        await client.close()
        print(f"asr: {redact(str(exc)) or type(exc).__name__}", file=out)
        return 1
    secs = n * 0.02
    print(f"asr: {secs:.1f} s of audio sent as Opus: {client.wire_bytes_sent * 8 / 1000 / max(secs, 1e-6):.1f} "
          f"kbit/s on the wire (PCM would be 256), {time.monotonic() - t0:.1f} s", file=out)
    return 0
