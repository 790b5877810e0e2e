"""What systemd listens on for sd_notify: a bound unix datagram socket recording every message."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path


class NotifyListener:
    """Bound at path (what NOTIFY_SOCKET names); messages are (monotonic time received, text)."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self.on_message = None                         # called on the reader thread
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            text = data.decode("utf-8", "replace")
            self.messages.append((time.monotonic(), text))
            if self.on_message is not None:
                self.on_message(text)

    def times(self, state: str) -> list[float]:
        """Receive times of messages that carry `state` (e.g. "READY=1") as one of their lines."""
        return [t for t, text in self.messages if state in text.split("\n")]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
