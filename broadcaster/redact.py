"""Keep secrets (stream keys, tokens, passphrases) out of every log line and error message.

Secrets are registered as they are loaded (config, environment) and scrubbed from any text
that is about to be shown; URLs are also scrubbed structurally, because an RTMP stream key
or an SRT passphrase sits inside the URL the user typed.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_QUERY_KEYS = {"passphrase", "key", "token", "access_token", "api_key", "apikey",
                      "secret", "password", "streamid", "auth", "sig", "signature"}
_WEB_SCHEMES = {"http", "https", "ws", "wss"}
_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Remember a secret so that redact() masks it wherever it appears (min. 4 chars)."""
    global _pattern
    if not value or len(value) < 4:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact_url(url: str) -> str:
    """Mask the parts of a media URL that carry credentials.

    rtmp(s)://host/app/KEY -> rtmp(s)://host/app/***; user:password@ and secret query values
    are masked for every scheme. A plain file path is returned unchanged.
    """
    if "://" not in url:
        return url
    scheme = url.split("://", 1)[0].lower()
    if scheme not in _WEB_SCHEMES:
        # Media URLs have no fragment: an SRT streamid is written "#!::r=live/KEY,m=publish",
        # and splitting at that "#" would leave the key outside the masked query value.
        url = url.replace("#", "%23")
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    path = parts.path
    if parts.scheme.lower() in ("rtmp", "rtmps", "rtmpt", "rtmpe", "rtmpte", "rtmpts"):
        segments = path.split("/")
        # rtmp://host/app/streamkey: everything after the application name is the key.
        if len(segments) > 2 and any(segments[2:]):
            path = "/".join(segments[:2] + [MASK])
    query = parts.query
    if query:
        pairs = [(k, MASK if k.lower() in _SECRET_QUERY_KEYS else v)
                 for k, v in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(pairs, safe="*")
    return redact(urlunsplit((parts.scheme, netloc, path, query, parts.fragment)))


def redact(text: str) -> str:
    """Mask every registered secret in text."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


# A URL inside free text: scheme://... up to whitespace, a quote or a closing bracket.
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>)]+")
# key=value pairs whose key names a secret, outside any URL (CLI flags, env dumps, reprs);
# "name: value" only for names that cannot be an ordinary word such as "key: video.fps".
# A name such as api_key, OPENAI_API_KEY, --stream-key, srt_passphrase: a secret word alone or
# after a "-"/"_" separated prefix ("keyframe_interval" and "monkey" do not match).
_SECRET_WORDS = (r"(?:key|token|secret|password|passwd|passphrase|apikey|streamkey|streamid"
                 r"|auth|sig|signature)")
_COLON_WORDS = (r"(?:token|secret|password|passwd|passphrase|apikey|streamkey|api[-_]key"
                r"|stream[-_]key)")
_SECRET_PAIR = re.compile(
    r"(?i)(?<![\w-])((?:[\w-]*[-_])?" + _SECRET_WORDS + r"['\"]?\s*=\s*['\"]?"
    r"|(?:[\w-]*[-_])?" + _COLON_WORDS + r"['\"]?\s*:\s*['\"]?)"
    r"(?!\*\*\*)([^\s&,;'\"}\]\)]+)")
_BEARER = re.compile(r"(?i)\b(bearer\s+)(?!\*\*\*)[^\s'\";,]+")


def _redact_url_match(match: re.Match[str]) -> str:
    url = match.group(0)
    # Sentence punctuation right after a URL belongs to the text, not to the URL.
    stripped = url.rstrip(".,;:!?")
    while stripped.endswith("]") and stripped.count("]") > stripped.count("["):
        stripped = stripped[:-1].rstrip(".,;:!?")  # "[see rtmp://h/a/k]": not an IPv6 host
    return redact_url(stripped) + url[len(stripped):]


def redact_text(text: str) -> str:
    """Mask secrets in free text: credential parts of every URL in it, secret key=value
    pairs (passphrase=..., api_key: ...) and every registered secret.

    Use this for log lines and error messages, where a URL or an option may be embedded
    anywhere in the text; redact() alone only knows the registered secrets.
    """
    if not text:
        return text
    text = _URL_IN_TEXT.sub(_redact_url_match, text)
    text = _SECRET_PAIR.sub(lambda m: m.group(1) + MASK, text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    return redact(text)
