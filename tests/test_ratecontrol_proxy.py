"""The step test's fallback link: throttling TCP/UDP proxies (tools/throttle_proxy.py), with real
sockets, and one short real step test through them (`tools/step_test.py --link proxy`).

CI runs as root, where the namespace mode would be chosen; --link proxy is forced here so the
fallback is exercised there too.
"""

from __future__ import annotations

import socket
import threading
import time

from broadcaster.transport.tcpinfo import read_tcp_info_from_socket
from tests.support.steptest import run_short_step_test
from tools import throttle_proxy


class _Counter:
    """Bytes received over time, thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = 0
        self.marks: list[tuple[float, int]] = []

    def add(self, n: int) -> None:
        with self.lock:
            self.total += n

    def mark(self) -> tuple[float, int]:
        with self.lock:
            return time.monotonic(), self.total


def _rate_kbit(a, b) -> float:
    return (b[1] - a[1]) * 8 / 1000 / (b[0] - a[0])


def test_tcp_proxy_shapes_the_upstream_and_backpressure_reaches_the_sender():
    server = socket.create_server(("127.0.0.1", 0))
    received = _Counter()
    stop = threading.Event()

    def serve():
        conn, _ = server.accept()
        conn.settimeout(0.2)
        with conn:
            n = 0
            while not stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    return
                received.add(len(data))
                n += 1
                if n % 10 == 0:
                    conn.sendall(b"ack")            # a little reverse traffic, unshaped

    server_thread = threading.Thread(target=serve)
    server_thread.start()
    proxy = throttle_proxy.ThrottlingTcpProxy(0, server.getsockname()[1], 2000).start()
    sender = socket.create_connection(("127.0.0.1", proxy.listen_port))
    sent = [0]

    def push():
        chunk = b"x" * 16384
        try:
            while not stop.is_set():
                sent[0] += sender.send(chunk)
        except OSError:
            pass

    push_thread = threading.Thread(target=push)
    try:
        first = read_tcp_info_from_socket(sender)
        push_thread.start()
        time.sleep(1.0)
        a = received.mark()
        queued = read_tcp_info_from_socket(sender)
        time.sleep(2.0)
        b = received.mark()
        proxy.set_rate(500)
        time.sleep(1.0)
        c = received.mark()
        time.sleep(2.0)
        d = received.mark()
        info = read_tcp_info_from_socket(sender)
        at_2000, at_500 = _rate_kbit(a, b), _rate_kbit(c, d)
        print(f"2000 kbit -> {at_2000:.0f}, 500 kbit -> {at_500:.0f}; sender notsent "
              f"{first.notsent_bytes} -> {queued.notsent_bytes} -> {info.notsent_bytes} B, "
              f"acked {info.bytes_acked} B, server got {d[1]} B, app wrote {sent[0]} B")
        assert abs(at_2000 - 2000) < 0.15 * 2000, at_2000
        assert abs(at_500 - 500) < 0.15 * 500, at_500
        # the backlog sits in the sender's own socket, where its TCP_INFO sees it ...
        assert first.notsent_bytes == 0
        assert queued.notsent_bytes > 64 * 1024 and info.notsent_bytes > 64 * 1024
        # ... and the kernel's acked bytes follow the shaped rate: the proxy hides little
        assert 0 <= info.bytes_acked - d[1] < 96 * 1024, (info.bytes_acked, d[1])
        assert proxy.connections == 1 and proxy.bytes_forwarded >= d[1] and not proxy.errors
    finally:
        stop.set()
        sender.close()
        if push_thread.ident is not None:
            push_thread.join(5)
        proxy.close()
        server_thread.join(5)
        server.close()
    assert not server_thread.is_alive() and not push_thread.is_alive()
    assert not [t for t in threading.enumerate() if t.name.startswith("tcp-proxy")]


def test_tcp_proxy_accepts_a_reconnect():
    server = socket.create_server(("127.0.0.1", 0))
    proxy = throttle_proxy.ThrottlingTcpProxy(0, server.getsockname()[1], 1000).start()
    try:
        for i in range(2):
            client = socket.create_connection(("127.0.0.1", proxy.listen_port), 5)
            conn, _ = server.accept()
            client.sendall(b"hello %d" % i)
            conn.settimeout(5)
            assert conn.recv(100) == b"hello %d" % i
            conn.sendall(b"back")
            client.settimeout(5)
            assert client.recv(100) == b"back"
            client.close()
            assert conn.recv(100) == b""             # the close went through the proxy
            conn.close()
        assert proxy.connections == 2 and not proxy.errors
    finally:
        proxy.close()
        server.close()


def test_udp_proxy_delivers_the_rate_drops_the_excess_and_passes_replies():
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(0.2)
    received = _Counter()
    stop = threading.Event()

    def serve():
        n = 0
        while not stop.is_set():
            try:
                data, addr = server.recvfrom(65536)
            except TimeoutError:
                continue
            received.add(len(data))
            n += 1
            if n % 10 == 0:
                server.sendto(b"ACK %d" % n, addr)      # like SRT's ACKs, unshaped back

    server_thread = threading.Thread(target=serve)
    server_thread.start()
    proxy = throttle_proxy.ThrottlingUdpProxy(0, server.getsockname()[1], 1000, queue_ms=300).start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.connect(("127.0.0.1", proxy.listen_port))
    client.setblocking(False)
    replies = 0
    try:
        payload = b"t" * 1316
        interval = len(payload) * 8 / 2_000_000                # offered: 2000 kbit/s
        start = time.monotonic()
        next_t, sent, a = start, 0, None
        while time.monotonic() - start < 3.5:
            if a is None and time.monotonic() - start >= 1.0:  # the queue is full by then
                a = received.mark()
            client.send(payload)
            sent += 1
            try:
                while True:
                    if client.recv(100).startswith(b"ACK"):
                        replies += 1
            except BlockingIOError:
                pass
            next_t += interval
            time.sleep(max(0.0, next_t - time.monotonic()))
        b = received.mark()
        delivered = _rate_kbit(a, b)
        print(f"offered 2000 kbit, delivered {delivered:.0f} kbit; {proxy.dropped} of {sent} "
              f"dropped, peak queue {proxy.peak_queue_bytes} B (limit {proxy.queue_limit()}), "
              f"{replies} replies")
        assert abs(delivered - 1000) < 0.15 * 1000, delivered
        assert 0.3 * sent < proxy.dropped < 0.7 * sent
        assert proxy.peak_queue_bytes <= proxy.queue_limit() == 1000 * 1000 // 8 * 300 // 1000 + 16384
        assert replies > 10 and proxy.datagrams_down >= replies and not proxy.errors
    finally:
        stop.set()
        client.close()
        proxy.close()
        server_thread.join(5)
        server.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("udp-proxy")]


def test_short_step_test_through_the_proxy(tmp_path):
    out = tmp_path / "out"
    # (reconnects, settling and the peak delay are checked by run_short_step_test)
    stdout, figures = run_short_step_test(out, "--link", "proxy", timeout=150)
    assert "link: throttling proxy" in stdout
    for f in figures.values():
        assert f["link"] == "proxy", f
    rows = [r.split(",") for r in (out / "step_test.csv").read_text().splitlines()[1:]]
    for protocol in ("rtmp", "srt"):
        at_1m = [r for r in rows if r[0] == protocol and r[3] == "1000" and float(r[2]) > 8.0]
        assert at_1m and sum(int(r[4]) for r in at_1m) / len(at_1m) <= 1000, protocol
