"""sd_notify against a real unix datagram socket, as systemd would listen on it."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from broadcaster import redact
from broadcaster.service.sdnotify import SdNotifier, WatchdogPacer


def _receive_all(sock: socket.socket) -> list[str]:
    messages = []
    sock.settimeout(0.5)
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except (TimeoutError, socket.timeout):
            return messages
        sock.settimeout(0.05)


@pytest.fixture
def path_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    yield path, sock
    sock.close()


def test_ready_watchdog_status_stopping_over_path_socket(path_socket, monkeypatch):
    path, sock = path_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    redact.register_secret("skey_for_notify_test")
    notifier = SdNotifier()
    assert notifier.enabled
    assert notifier.watchdog_interval_s == 15.0
    assert notifier.ready()
    assert notifier.watchdog()
    assert notifier.status("on air to rtmp://h/app/skey_for_notify_test\nbitrate 900k")
    assert notifier.reloading()
    assert notifier.stopping()
    notifier.close()
    got = _receive_all(sock)
    assert got[:3] == ["READY=1", "WATCHDOG=1", "STATUS=on air to rtmp://h/app/*** bitrate 900k"]
    assert got[3].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert got[4] == "STOPPING=1"


def test_abstract_socket_name(monkeypatch):
    name = f"broadcaster-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    try:
        notifier = SdNotifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready("streaming")
        assert notifier.watchdog()
        notifier.close()
        assert _receive_all(sock) == ["READY=1\nSTATUS=streaming", "WATCHDOG=1"]
    finally:
        sock.close()


def test_watchdog_pacer_pings_at_half_the_interval(path_socket):
    path, sock = path_socket
    notifier = SdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    pacer = WatchdogPacer(notifier)
    assert pacer.interval_s == 1.0
    sent = [pacer.maybe_ping(t / 20) for t in range(0, 61)]  # 3 s of frames at 20 fps
    notifier.close()
    assert sum(sent) == 4  # t = 0, 1, 2, 3
    assert _receive_all(sock) == ["WATCHDOG=1"] * 4


def test_no_op_outside_systemd_and_for_foreign_watchdog():
    notifier = SdNotifier({})
    assert not notifier.enabled
    assert notifier.ready() is False and notifier.watchdog() is False
    assert WatchdogPacer(notifier).maybe_ping(0.0) is False
    foreign = SdNotifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)})
    assert foreign.watchdog_interval_s is None


def test_vanished_socket_does_not_raise(tmp_path, caplog):
    notifier = SdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.ready() is False
    assert notifier.watchdog() is False
    assert sum("sd_notify failed" in r.message for r in caplog.records) == 1
    notifier.close()
