"""nginx-rtmp's `on_publish` callback as a platform uses it to check stream keys: a local HTTP
server that answers 200 for the keys it knows and 403 for any other (nginx-rtmp then drops
the publisher)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class PublishAuth:
    def __init__(self, keys: set[str]) -> None:
        self.keys = set(keys)
        self.asked: list[str] = []         # the stream names nginx asked about
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
                name = form.get("name", [""])[0]
                outer.asked.append(name)
                self.send_response(200 if name in outer.keys else 403)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/on_publish"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> PublishAuth:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
