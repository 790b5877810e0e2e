"""Helpers for tests that run the real `python -m broadcaster run` and watch its service side:
a NOTIFY_SOCKET listener, /metrics and /healthz readers, temp config files, polling."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent.parent


class NotifyListener:
    """A bound unix datagram socket (what systemd listens on) recording every message."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []   # (monotonic time received, text)
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


def write_config(path: Path, **sections) -> Path:
    """A config.yaml whose scenes default to the repository's scenes directory."""
    data = {"scenes_dir": str(ROOT / "scenes")}
    data.update(sections)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


FAST_RECONNECT = {"initial_s": 0.5, "factor": 1.0, "max_s": 1.0, "jitter": 0.0}


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_post(url: str, payload: dict, timeout: float = 2.0) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode("utf-8"),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def healthz(port: int) -> tuple[int, dict]:
    status, body = http_get(f"http://127.0.0.1:{port}/healthz")
    return status, json.loads(body)


def metrics(port: int) -> dict[str, object]:
    """Metric families by name, parsed with the Prometheus client's own parser."""
    _, body = http_get(f"http://127.0.0.1:{port}/metrics")
    return {f.name: f for f in text_string_to_metric_families(body.decode("utf-8"))}


def metrics_text(port: int) -> str:
    return http_get(f"http://127.0.0.1:{port}/metrics")[1].decode("utf-8")


def sample(families: dict, family: str, sample_name: str | None = None, **labels) -> float:
    """The value of one sample (first matching the labels) of a family."""
    for s in families[family].samples:
        if s.name == (sample_name or family) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError(f"{sample_name or family} {labels} not in /metrics")


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll until predicate() returns a truthy value (returned); fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError, KeyError) as exc:
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}"
                         + (f" (last error: {last_exc})" if last_exc else ""))


def stop(proc, timeout: float = 30) -> tuple[str, str]:
    """SIGTERM the broadcaster and collect its output (kill only if it hangs)."""
    import signal
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=timeout)
    except Exception:
        proc.kill()
        return proc.communicate()
