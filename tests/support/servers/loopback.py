"""A TCP listener on 127.0.0.1 (a free port) that hands each accepted connection to a
callback on its own accept thread; what the small fake servers share."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable


class LoopbackListener:
    def __init__(self, on_accept: Callable[[socket.socket], None], name: str, port: int = 0) -> None:
        """port 0: a free one; or a given port (that of a stopped ingest, to stand in its place)."""
        self._on_accept = on_accept
        self._server = socket.create_server(("127.0.0.1", port))
        self.port = self._server.getsockname()[1]
        self.accepted = 0
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=name, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._on_accept(conn)

    def close(self) -> None:
        self.stopping.set()
        self._thread.join(2)
        self._server.close()
