"""Plain HTTP requests to a local server: an error status is returned, not raised."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


def _fetch(request: urllib.request.Request | str, timeout: float) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    return _fetch(url, timeout)


def http_json(method: str, url: str, body: dict | None = None, timeout: float = 5.0,
              headers: dict | None = None):
    """(status, decoded JSON body) of a request with an optional JSON body (and headers)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    status, raw = _fetch(request, timeout)
    return status, json.loads(raw or b"null")
