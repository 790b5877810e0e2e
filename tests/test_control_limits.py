"""A flood of half-open connections under a 1,024 descriptor limit: the real broadcaster keeps
answering /healthz, stays on air and reports the storm in a few lines, not a traceback each.
The cap itself (CappedConnections) is checked on a real aiohttp server with a small limit."""

import asyncio
import socket
import subprocess

from aiohttp import web

from broadcaster.logthrottle import LogThrottle
from broadcaster.service.control import CappedConnections
from tests.support.broadcaster_proc import (
    broadcaster_cmd,
    healthz,
    run_env,
    wait_on_air,
)
from tests.support.paths import ROOT
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import stop

FLOOD = 1100


def test_log_throttle_allows_one_line_a_second_with_the_count_held_back():
    throttle = LogThrottle(1.0)
    assert throttle.allow("emfile", 10.0) == 0
    assert [throttle.allow("emfile", 10.0 + i / 10) for i in range(1, 10)] == [None] * 9
    assert throttle.allow("other", 10.5) == 0
    assert throttle.allow("emfile", 11.0) == 9
    assert throttle.allow("emfile", 11.5) is None


def peer_state(sock: socket.socket) -> str:
    """'open' (nothing to read yet), 'closed' (the peer's FIN) or 'reset', without blocking."""
    sock.setblocking(False)
    try:
        return "closed" if sock.recv(1, socket.MSG_PEEK) == b"" else "open"
    except BlockingIOError:
        return "open"
    except ConnectionResetError:
        return "reset"


async def _capped_healthz(limit: int, on_full) -> tuple[bytes, list[str], list[Exception]]:
    """Open `limit` idle connections to a real aiohttp server capped at `limit`, then GET
    /healthz on one more: (its status line, the idle ones' states after it, errors reported)."""
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", ok)
    runner = web.AppRunner(app, keepalive_timeout=60)   # no idle expiry during the test
    await runner.setup()
    errors: list[Exception] = []
    listener = await asyncio.get_running_loop().create_server(
        CappedConnections(runner.server, limit, on_full, errors.append), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(limit)]
    try:
        for _ in range(500):   # up to 5 s for the server to take them all in
            if len(runner.server.connections) >= limit:
                break
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        try:
            status = await asyncio.wait_for(reader.readline(), 5)
        except ConnectionResetError:
            status = b"reset"
        writer.close()
        await asyncio.sleep(0.1)   # the closed idle connection's FIN reaches its client
        return status, [peer_state(s) for s in idle], errors
    finally:
        for s in idle:
            s.close()
        listener.close()
        await runner.cleanup()


def test_a_full_endpoint_closes_its_oldest_idle_connection_and_answers_the_new_one():
    full: list[int] = []
    status, states, errors = asyncio.run(_capped_healthz(3, lambda: full.append(1)))
    assert status.startswith(b"HTTP/1.1 200"), status
    assert states == ["closed", "open", "open"]
    assert full == [1] and errors == []


def test_an_error_in_the_cap_is_reported_and_the_connection_still_served():
    def on_full():
        raise RuntimeError("cap bookkeeping failed")

    status, states, errors = asyncio.run(_capped_healthz(1, on_full))
    assert status.startswith(b"HTTP/1.1 200"), status
    assert states == ["open"]
    assert [str(e) for e in errors] == ["cap bookkeeping failed"]


def test_half_open_connection_flood_leaves_the_endpoint_answering(tmp_path):
    port = free_port()
    # the default soft and hard limit of many systems, which the process cannot raise
    limit = ["prlimit", "--nofile=1024:1024", "--"]
    proc = subprocess.Popen(
        limit + broadcaster_cmd("run", "--output", str(tmp_path / "flood.flv"),
                                "--control-port", str(port), "--duration", "120"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=run_env(), cwd=ROOT)
    clients: list[socket.socket] = []
    try:
        wait_on_air(port)
        for _ in range(FLOOD):
            try:
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=1))
            except OSError:
                pass   # the listen backlog is full for a moment: the flood goes on
        assert len(clients) > 1024, len(clients)
        status = wait_for(lambda: healthz(port, timeout=2)[0], 10, interval=0.5,
                          what="/healthz to answer during the flood", proc=proc)
        assert status == 200
        # room was made by closing the oldest idle connections, not by turning new ones away
        # (the idle timeout alone would also close the oldest, but only after 15 s)
        assert peer_state(clients[0]) == "closed"
        assert peer_state(clients[-1]) == "open"
    finally:
        for client in clients:
            client.close()
        _, err = stop(proc)
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    assert "Too many open files" not in err
    storm = [line for line in err.splitlines() if "connections open" in line]
    assert 1 <= len(storm) <= 30, storm
    assert len(err) < 50_000
