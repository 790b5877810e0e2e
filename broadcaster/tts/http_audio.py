"""One streamed audio request to a TTS server over HTTP(S), with the deadlines a live anchor
needs: the first audio must arrive within first_audio_s of sending, and once it flows no read
may wait longer than stall_s. Every failure is a TTSError naming the engine and what broke,
never the API key. Bytes are reported to `count(n, direction)` as they go (for /metrics).

Plain http.client is used (not an async client) because each request runs on the speech
stage's worker thread and the socket timeout is changed between reads.
"""
from __future__ import annotations

import http.client
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

from broadcaster.redact import redact_text, register_secret
from broadcaster.tts.engine import SpeechChunk, TTSError

ByteCounter = Callable[[int, str], None]   # (bytes, "up" | "down")


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 3.0
    first_audio_s: float = 2.0   # request sent -> first audio sample received
    stall_s: float = 3.0         # longest wait for the next bytes once audio flows


@dataclass(frozen=True)
class AudioRequest:
    """What to send: the full URL, the body and its content type, extra headers."""

    url: str
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()
    method: str = "POST"


class Decoder:
    """Bytes -> float32 samples; `rate` is None until the stream has told it (WAV header)."""

    rate: int | None

    def feed(self, data: bytes) -> np.ndarray: ...


def bearer(key: str | None) -> tuple[tuple[str, str], ...]:
    """An Authorization header for an API key (registered as a secret), or none."""
    if not key:
        return ()
    register_secret(key)
    return (("Authorization", f"Bearer {key}"),)


def _connect(engine: str, request: AudioRequest, timeouts: Timeouts
             ) -> tuple[http.client.HTTPConnection, str, dict]:
    parts = urlsplit(request.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TTSError(f"{engine}: url must be http(s)://host[:port]/..., got "
                       f"{redact_text(request.url)!r}")
    conn_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_type(parts.hostname, parts.port, timeout=timeouts.connect_s)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"Accept": "*/*", **dict(request.headers)}
    if request.body:
        headers["Content-Type"] = request.content_type
    return conn, path, headers


def fetch(engine: str, request: AudioRequest, timeouts: Timeouts,
          count: ByteCounter | None = None, limit: int = 65536) -> bytes:
    """A short request (a voice switch): the body of a 200 answer within first_audio_s,
    else TTSError."""
    conn, path, headers = _connect(engine, request, timeouts)
    try:
        conn.request(request.method, path, body=request.body or None, headers=headers)
        if count:
            count(len(request.body) + len(path), "up")
        conn.sock.settimeout(timeouts.first_audio_s)
        response = conn.getresponse()
        body = response.read(limit)
        if count:
            count(len(body), "down")
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        raise _error(engine, request, f"request failed: {exc!r}") from None
    finally:
        conn.close()
    if response.status != 200:
        detail = body[:300].decode("utf-8", "replace").strip()
        raise _error(engine, request, f"HTTP {response.status} {response.reason}: {detail}")
    return body


def stream_audio(engine: str, request: AudioRequest, decoder: Decoder, timeouts: Timeouts,
                 count: ByteCounter | None = None, read_size: int = 8192,
                 clock: Callable[[], float] = time.monotonic) -> Iterator[SpeechChunk]:
    """Send the request and yield the decoded audio as it arrives."""
    conn, path, headers = _connect(engine, request, timeouts)
    got_audio = False
    try:
        sent = clock()
        try:
            conn.request(request.method, path, body=request.body, headers=headers)
        except OSError as exc:
            raise _error(engine, request, f"cannot connect: {exc}") from None
        if count:
            count(len(request.body), "up")
        deadline = sent + timeouts.first_audio_s
        try:
            conn.sock.settimeout(max(0.001, deadline - clock()))
            response = conn.getresponse()
        except TimeoutError:
            raise _error(engine, request, f"no answer within {timeouts.first_audio_s:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise _error(engine, request, f"connection broke: {exc!r}") from None
        if response.status != 200:
            detail = response.read(300).decode("utf-8", "replace").strip()
            raise _error(engine, request, f"HTTP {response.status} {response.reason}: {detail}")
        while True:
            wait = timeouts.stall_s if got_audio else deadline - clock()
            if wait <= 0:
                raise _error(engine, request, f"no audio within {timeouts.first_audio_s:g} s")
            try:
                conn.sock.settimeout(wait)
                data = response.read1(read_size)
            except TimeoutError:
                what = (f"stream stalled for {timeouts.stall_s:g} s" if got_audio
                        else f"no audio within {timeouts.first_audio_s:g} s")
                raise _error(engine, request, what) from None
            except (OSError, http.client.HTTPException) as exc:
                raise _error(engine, request, f"stream broke: {exc!r}") from None
            if not data:
                break
            if count:
                count(len(data), "down")
            try:
                pcm = decoder.feed(data)
            except ValueError as exc:
                raise _error(engine, request, f"bad audio: {exc}") from None
            if pcm.size:
                got_audio = True
                yield SpeechChunk(pcm, int(decoder.rate), engine)
        if not got_audio:
            raise _error(engine, request, "the answer held no audio")
    finally:
        conn.close()


def _error(engine: str, request: AudioRequest, what: str) -> TTSError:
    parts = urlsplit(request.url)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}{parts.path}"
    return TTSError(redact_text(f"{engine} at {where}: {what}"))


class FixedRate:
    """A decoder wrapper for raw PCM whose rate the engine knows up front."""

    def __init__(self, decoder, rate: int) -> None:
        self._decoder, self.rate = decoder, rate

    def feed(self, data: bytes) -> np.ndarray:
        return self._decoder.feed(data)


def multipart(fields: list[tuple[str, str]], files: list[tuple[str, str, bytes]]
              ) -> tuple[bytes, str]:
    """A multipart/form-data body (text fields, then files as (field, filename, bytes)) and
    its content type."""
    boundary = "broadcaster-" + uuid.uuid4().hex
    parts = []
    for name, value in fields:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     .encode() + value.encode("utf-8") + b"\r\n")
    for name, filename, data in files:
        safe = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{safe}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                     .encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
