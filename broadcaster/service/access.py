"""Who may use the control endpoint: a pure policy over one request's method, path and headers.

A web page the operator's browser visits can send requests to 127.0.0.1 too, so the endpoint
checks, on every route:
- the Host header names the bound address or a loopback name (a foreign name means DNS
  rebinding: an attacker's domain resolving to this machine);
- an Origin header, when present, names the same (a foreign page's fetch or WebSocket);
- POST bodies are `application/json` (a form or `text/plain` POST, which a page can send
  without asking, is refused);
- with `control.token` set: `Authorization: Bearer TOKEN` (or `?token=` on the WebSocket),
  except on the read-only /healthz and /metrics, which systemd and Prometheus poll.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
# no token needed: health and metrics for systemd and Prometheus, and the studio page's own
# static files (they hold no data; everything the page reads or does needs the token)
OPEN_PATHS = frozenset({"/healthz", "/metrics", "/studio", "/studio/", "/studio/index.html",
                        "/studio/studio.js", "/studio/studio.css"})
TOKEN_QUERY_PATHS = frozenset({"/chat/ws"})


def is_loopback_host(host: str) -> bool:
    """True for localhost and any loopback address (127.0.0.0/8, ::1)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _hostname(authority: str) -> str | None:
    """'Example.com:8765' / '[::1]:8765' -> 'example.com' / '::1'; None when malformed."""
    try:
        name = urlsplit("//" + authority).hostname
    except ValueError:
        return None
    return name.rstrip(".") if name else None


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str
    detail: str


@dataclass(frozen=True)
class AccessPolicy:
    bind_host: str
    token: str | None = None

    def allowed_names(self, host_name: str | None) -> frozenset[str]:
        names = set(LOOPBACK_NAMES)
        if self.bind_host in WILDCARD_HOSTS:
            if host_name:
                names.add(host_name)    # any name reaches a wildcard bind; the token guards it
        else:
            names.add(self.bind_host.strip("[]").lower())
        return frozenset(names)

    def refusal(self, method: str, path: str, headers: Mapping[str, str],
                query: Mapping[str, str]) -> Refusal | None:
        """Why this request is refused, or None when it may go on."""
        host_header = headers.get("Host")
        host_name = _hostname(host_header) if host_header is not None else None
        allowed = self.allowed_names(host_name)
        if host_header is not None and host_name not in allowed:
            return Refusal(403, "bad_host", "the Host header does not name this endpoint")
        origin = headers.get("Origin")
        if origin is not None:
            parts = urlsplit(origin) if origin != "null" else None
            if parts is None or parts.scheme not in ("http", "https") or \
                    _hostname(parts.netloc) not in allowed:
                return Refusal(403, "bad_origin", "requests from other web sites are not accepted")
        if self.token and path not in OPEN_PATHS and not self._has_token(path, headers, query):
            return Refusal(401, "unauthorized", "send the control token as 'Authorization: Bearer ...'")
        if method == "POST":
            mime = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            if mime != "application/json":
                return Refusal(415, "not_json", "the body must be sent as Content-Type: application/json")
        return None

    def _has_token(self, path: str, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        scheme, _, given = headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and given:
            return hmac.compare_digest(given.strip().encode(), self.token.encode())
        if path in TOKEN_QUERY_PATHS and "token" in query:
            return hmac.compare_digest(query["token"].encode(), self.token.encode())
        return False
