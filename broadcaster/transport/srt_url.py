"""Parse srt:// URLs the way OBS, ffmpeg and SRT ingests write them.

    srt://host:port?mode=caller|listener&latency=...&passphrase=...&pbkeylen=16|24|32
                   &streamid=...&connect_timeout=ms

Latency: ffmpeg's (and so OBS's) `latency` is in MICROseconds, srt-live-transmit's is in
milliseconds. `latency_ms=` is unambiguous and preferred. For `latency=` a value of 10000
or more is read as microseconds (ffmpeg/OBS: 10 ms and up), a smaller one as milliseconds
(srt-live-transmit: up to 9.999 s); nobody wants an SRT latency under 10 ms, or over 10 s.
Unknown query keys are an error, so that a typo does not silently fall back to a default.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from broadcaster.redact import redact_url, register_secret

DEFAULT_LATENCY_MS = 120
DEFAULT_CONNECT_TIMEOUT_MS = 3000
_US_THRESHOLD = 10_000
_KNOWN_KEYS = ("mode", "latency", "latency_ms", "passphrase", "pbkeylen", "streamid",
               "connect_timeout", "transtype", "pkt_size", "payload_size")


class SrtUrlError(ValueError):
    """An srt:// URL that cannot be used; the message names the part at fault (never a secret)."""


@dataclass(frozen=True)
class SrtUrl:
    """A validated SRT endpoint. `passphrase` is a secret: never log it (use display())."""

    host: str                 # "" for a listener on every interface
    port: int
    mode: str                 # "caller" | "listener"
    latency_ms: int = DEFAULT_LATENCY_MS
    passphrase: str | None = None
    pbkeylen: int | None = None
    streamid: str | None = None
    connect_timeout_ms: int = DEFAULT_CONNECT_TIMEOUT_MS

    def display(self) -> str:
        """host:port with no secret, for logs and errors."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __repr__(self) -> str:  # keep secrets out of tracebacks and debug logs
        return (f"SrtUrl({self.display()}, mode={self.mode}, latency_ms={self.latency_ms}, "
                f"encrypted={self.passphrase is not None}, streamid={'set' if self.streamid else None})")


def _int(key: str, raw: str, url: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SrtUrlError(f"SRT URL {redact_url(url)}: {key} must be an integer") from None


def parse_srt_url(url: str) -> SrtUrl:
    """Validate an srt:// URL into an SrtUrl; raises SrtUrlError with a clear message."""
    if not isinstance(url, str) or not url.lower().startswith("srt://"):
        raise SrtUrlError(f"not an srt:// URL: {redact_url(str(url))}")
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SrtUrlError(f"SRT URL {shown}: bad host or port ({exc})") from None
    host = parts.hostname or ""
    if port is None:
        raise SrtUrlError(f"SRT URL {shown}: a port is required (srt://host:port)")
    if not 1 <= port <= 65535:
        raise SrtUrlError(f"SRT URL {shown}: the port must be 1 to 65535, got {port}")
    if parts.path not in ("", "/"):
        raise SrtUrlError(f"SRT URL {shown}: unexpected path {parts.path!r}; "
                          "put options in the query (?streamid=...)")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    seen: dict[str, str] = {}
    for key, value in pairs:
        if key not in _KNOWN_KEYS:
            raise SrtUrlError(f"SRT URL {shown}: unknown option {key!r} "
                              f"(supported: {', '.join(_KNOWN_KEYS)})")
        if key in seen:
            raise SrtUrlError(f"SRT URL {shown}: option {key!r} given twice")
        seen[key] = value
    if "passphrase" in seen:
        register_secret(seen["passphrase"])
    if "streamid" in seen:
        register_secret(seen["streamid"])

    mode = seen.get("mode", "caller" if host else "listener").lower()
    if mode == "rendezvous":
        raise SrtUrlError(f"SRT URL {shown}: rendezvous mode is not supported (use caller or listener)")
    if mode not in ("caller", "listener"):
        raise SrtUrlError(f"SRT URL {shown}: mode must be caller or listener, not {mode!r}")
    if mode == "caller" and not host:
        raise SrtUrlError(f"SRT URL {shown}: caller mode needs a host (srt://host:port)")

    latency_ms = DEFAULT_LATENCY_MS
    if "latency_ms" in seen and "latency" in seen:
        raise SrtUrlError(f"SRT URL {shown}: give latency or latency_ms, not both")
    if "latency_ms" in seen:
        latency_ms = _int("latency_ms", seen["latency_ms"], url)
    elif "latency" in seen:
        raw = _int("latency", seen["latency"], url)
        latency_ms = raw // 1000 if raw >= _US_THRESHOLD else raw
    if not 0 <= latency_ms <= 60_000:
        raise SrtUrlError(f"SRT URL {shown}: latency must be 0..60000 ms, got {latency_ms} ms")

    passphrase = seen.get("passphrase")
    if passphrase is not None:
        if passphrase == "":
            passphrase = None
        elif not 10 <= len(passphrase) <= 79:
            raise SrtUrlError(f"SRT URL {shown}: passphrase must be 10 to 79 characters "
                              f"(it has {len(passphrase)})")
    pbkeylen = None
    if "pbkeylen" in seen:
        pbkeylen = _int("pbkeylen", seen["pbkeylen"], url)
        if pbkeylen == 0:
            pbkeylen = None
        elif pbkeylen not in (16, 24, 32):
            raise SrtUrlError(f"SRT URL {shown}: pbkeylen must be 16, 24 or 32, got {pbkeylen}")
        elif passphrase is None:
            raise SrtUrlError(f"SRT URL {shown}: pbkeylen given without a passphrase")

    streamid = seen.get("streamid") or None
    if streamid is not None and len(streamid.encode()) > 512:
        raise SrtUrlError(f"SRT URL {shown}: streamid is longer than 512 bytes")

    connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS
    if "connect_timeout" in seen:
        connect_timeout_ms = _int("connect_timeout", seen["connect_timeout"], url)
        if not 100 <= connect_timeout_ms <= 120_000:
            raise SrtUrlError(f"SRT URL {shown}: connect_timeout must be 100..120000 ms")
    if seen.get("transtype", "live") != "live":
        raise SrtUrlError(f"SRT URL {shown}: only transtype=live is supported")
    for key in ("pkt_size", "payload_size"):
        if key in seen and _int(key, seen[key], url) != 1316:
            raise SrtUrlError(f"SRT URL {shown}: {key} must be 1316 (7 MPEG-TS packets)")
    return SrtUrl(host=host, port=port, mode=mode, latency_ms=latency_ms, passphrase=passphrase,
                  pbkeylen=pbkeylen, streamid=streamid, connect_timeout_ms=connect_timeout_ms)
