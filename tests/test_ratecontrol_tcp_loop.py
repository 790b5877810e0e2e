"""Closed loop over a real kernel TCP connection: TCP_INFO meter -> controller -> sender.

A reader drains a loopback connection at 1 Mbit/s; a sender writes "media" at whatever the
controller decides (an I-frame burst every 2 s). The controller must bring the kernel's
hidden backlog under control; a fixed bitrate at 2.5 Mbit/s must not.
"""

from __future__ import annotations

import socket
import threading
import time

from broadcaster.ratecontrol.controller import RateControlConfig, RateController
from broadcaster.ratecontrol.tcp_meter import TcpLinkMeter
from broadcaster.transport.tcpinfo import find_tcp_socket_fd, read_tcp_info

CAPACITY_BPS = 125_000          # the reader's rate: 1 Mbit/s
TICK = 0.05


def reader(server: socket.socket, stop: threading.Event) -> None:
    conn, _ = server.accept()
    conn.settimeout(0.05)
    with conn:
        start, got = time.monotonic(), 0
        while not stop.is_set():
            allowed = int((time.monotonic() - start) * CAPACITY_BPS) - got
            if allowed > 0:
                try:
                    got += len(conn.recv(min(allowed, 65536)))
                except (socket.timeout, OSError):
                    pass
            time.sleep(0.005)


def run(seconds: float, controller: RateController | None, fixed_kbps: float = 0.0):
    server = socket.socket()
    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1448)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    stop = threading.Event()
    t = threading.Thread(target=reader, args=(server, stop))
    t.start()
    client = socket.socket()
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1448)
    client.connect(server.getsockname())
    handle = find_tcp_socket_fd("127.0.0.1", server.getsockname()[1])
    meter = TcpLinkMeter()
    kbps = controller.config.link_kbps(controller.config.start_kbps) if controller else fixed_kbps
    trace = []
    try:
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < seconds:
            shape = 4.0 if n % 40 == 0 else 36 / 39        # 2 s GOP, mean 1
            client.sendall(bytes(int(kbps * 1000 / 8 * TICK * shape)))
            now = time.monotonic()
            sample = meter.sample(now, read_tcp_info(handle))
            if sample is not None:
                if controller is not None:
                    decision = controller.update(sample)
                    kbps = controller.config.link_kbps(decision.video_kbps)
                trace.append((now - t0, sample.queue_delay_ms, kbps, sample.send_rate_kbps))
            n += 1
            time.sleep(max(0.0, t0 + n * TICK - time.monotonic()))
    finally:
        stop.set()
        client.close()
        t.join(5)
        server.close()
    return trace


def test_controller_tames_the_kernel_backlog_on_a_real_socket():
    cfg = RateControlConfig(floor_kbps=200, ceiling_kbps=3000, start_kbps=2500,
                            audio_kbps=128, overhead=0.0)
    trace = run(8.0, RateController(cfg))
    late = [row for row in trace if row[0] >= 4.0]
    assert max(d for _, d, _, _ in late) < 400, max(d for _, d, _, _ in late)
    mean_rate = sum(k for _, _, k, _ in late) / len(late)
    assert 0.55 * 1000 < mean_rate < 1.1 * 1000, mean_rate     # settles near 1 Mbit/s


def test_fixed_bitrate_lets_the_backlog_grow():
    trace = run(3.0, None, fixed_kbps=2500)
    assert trace[-1][1] > 1000                                  # over a second hidden
