"""TCP_INFO on a real loopback connection whose reader is slow."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from broadcaster.ratecontrol.tcp_meter import TcpLinkMeter
from broadcaster.transport.tcpinfo import SocketGone, find_tcp_socket_fd, limit_send_buffer, read_tcp_info

READ_RATE = 200_000   # bytes/s the slow reader takes


class SlowReader:
    """A loopback TCP server that reads at READ_RATE bytes/s from one client."""

    def __init__(self) -> None:
        self.server = socket.socket()
        # An Internet-like MSS: loopback's 64 KiB segments make ACKs arrive in lumps.
        self.server.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1448)
        self.read_log: list[tuple[float, int]] = []
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn, _ = self.server.accept()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        conn.settimeout(0.05)
        chunk = READ_RATE // 50
        with conn:
            while not self.stop.is_set():
                t = time.monotonic()
                try:
                    got = len(conn.recv(chunk))
                    self.read_log.append((time.monotonic(), got))
                except (socket.timeout, OSError):
                    pass
                time.sleep(max(0.0, 0.02 - (time.monotonic() - t)))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.server.close()


def connect(port: int) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1448)
    s.connect(("127.0.0.1", port))
    return s


def fill(sock: socket.socket, seconds: float) -> int:
    """Write as much as the kernel takes for `seconds` (non-blocking)."""
    sock.setblocking(False)
    total, end = 0, time.monotonic() + seconds
    data = bytes(16384)
    while time.monotonic() < end:
        try:
            total += sock.send(data)
        except BlockingIOError:
            time.sleep(0.005)
    return total


@pytest.fixture
def reader():
    r = SlowReader()
    yield r
    r.close()


def test_finds_the_fd_by_peer_and_reads_queue_and_drain(reader):
    client = connect(reader.port)
    try:
        handle = find_tcp_socket_fd("localhost", reader.port)
        assert handle is not None and handle.fd == client.fileno()
        meter = TcpLinkMeter()
        meter.sample(time.monotonic(), read_tcp_info(handle))
        samples = []
        for _ in range(12):
            fill(client, 0.1)
            info = read_tcp_info(handle)
            samples.append((meter.sample(time.monotonic(), info), info))
        last, info = samples[-1]
        assert info.notsent_bytes > 100_000          # seconds of data wait in the kernel
        assert info.rtt_ms > 0 and info.snd_cwnd > 0 and info.bytes_sent >= info.bytes_acked
        drain_bytes = last.send_rate_kbps * 1000 / 8
        now = time.monotonic()
        read = sum(n for t, n in reader.read_log if now - t <= 0.6) / 0.6   # the truth
        assert 0.6 * read < drain_bytes < 1.6 * read, (drain_bytes, read)
        assert read > 0.5 * READ_RATE
        assert last.queue_delay_ms > 500             # notsent / drain: the hidden backlog
        assert last.busy_rate_kbps is not None       # the sender never ran dry ...
        assert 0.6 * read < last.busy_rate_kbps * 1000 / 8 < 1.6 * read   # ... so: capacity
    finally:
        client.close()


def test_notsent_lowat_keeps_the_backlog_out_of_the_kernel(reader):
    client = connect(reader.port)
    try:
        handle = find_tcp_socket_fd("127.0.0.1", reader.port)
        limit_send_buffer(handle, notsent_lowat=16384)
        fill(client, 0.6)
        info = read_tcp_info(handle)
        assert info.notsent_bytes <= 2 * 16384 + 16384, info.notsent_bytes
    finally:
        client.close()


def test_a_closed_socket_is_not_misread(reader):
    client = connect(reader.port)
    handle = find_tcp_socket_fd("127.0.0.1", reader.port)
    client.close()
    other = open(__file__)          # likely reuses the fd number
    try:
        with pytest.raises(SocketGone):
            read_tcp_info(handle)
    finally:
        other.close()


def test_no_connection_gives_none(reader):
    assert find_tcp_socket_fd("127.0.0.1", reader.port + 1 if reader.port < 65535 else 1) is None
