"""Throttling TCP and UDP proxies on loopback: the step test's link when no namespace can be made.

Only the upstream direction (client -> server: the media) goes through a token bucket, like
the `tc ... tbf rate R burst 16kb latency 300ms` of the namespace mode; the reverse direction
(RTMP acks, SRT ACK/NAK packets) passes unshaped, as on a real uplink bottleneck.

TCP: the proxy is a bottleneck to the *sender's* kernel socket. Its listening socket has a
small SO_RCVBUF (set before listen(), so accepted sockets inherit it) and a 1500-byte-MTU MSS,
and it reads from the client only as fast as the bucket allows; the client's receive window
closes, the unsent bytes pile up in the sender's socket and its TCP_INFO (notsent bytes,
bytes_acked rate) sees the bottleneck. The proxy itself holds at most one read (<= burst).

UDP: one upstream socket per client address (so replies route back to it), one bounded
drop-tail queue of rate x queue_ms + burst bytes shared by all clients (tbf's `limit` from
`latency`), and one pacing thread that sends from it at the shaped rate. Dropped datagrams
are counted.

    with ThrottlingTcpProxy(19350, 1935, 3000) as p:   # or p.start() ... p.close()
        p.set_rate(1000)
"""

from __future__ import annotations

import collections
import select
import socket
import threading
import time

BURST_BYTES = 16 * 1024          # tbf `burst 16kb`
TCP_RCVBUF = 16 * 1024           # the client's window into the proxy (Linux doubles it)
TCP_SNDBUF = 32 * 1024           # toward the server: loopback, unshaped, small is plenty
TCP_MSS = 1448                   # as on a 1500-byte MTU link, not loopback's 64 kB
UDP_RCVBUF = 4 * 1024 * 1024     # the kernel must not drop before our queue does
POLL_S = 0.2                     # how often blocked threads look at the stop flag
UDP_IDLE_S = 30.0                # a client silent this long (both ways) is forgotten


class TokenBucket:
    """rate in kbit/s, at most `burst` bytes of credit; shared by every flow through one link.

    Tokens may go negative (two readers took the same credit): the debt is paid before anyone
    gets more. set_rate() wakes the waiters so a new rate takes effect at once.
    """

    def __init__(self, rate_kbit: float, burst: int = BURST_BYTES) -> None:
        if rate_kbit <= 0:
            raise ValueError(f"rate must be > 0 kbit/s, got {rate_kbit}")
        self._cond = threading.Condition()
        self._rate = rate_kbit * 1000 / 8        # bytes/s
        self._burst = burst
        self._tokens = float(burst)
        self._t = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._t) * self._rate)
        self._t = now

    @property
    def rate_kbit(self) -> float:
        return self._rate * 8 / 1000

    def set_rate(self, rate_kbit: float) -> None:
        if rate_kbit <= 0:
            raise ValueError(f"rate must be > 0 kbit/s, got {rate_kbit}")
        with self._cond:
            self._refill()                      # credit earned so far at the old rate
            self._rate = rate_kbit * 1000 / 8
            self._cond.notify_all()

    def wait(self, need: int, stop: threading.Event) -> float | None:
        """Block until at least `need` bytes of credit; returns the credit, None when stopped."""
        need = min(need, self._burst)
        with self._cond:
            while not stop.is_set():
                self._refill()
                if self._tokens >= need:
                    return self._tokens
                self._cond.wait(min(POLL_S, (need - self._tokens) / self._rate))
        return None

    def take(self, n: int) -> None:
        with self._cond:
            self._refill()
            self._tokens -= n


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _shutdown_quietly(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Proxy:
    """Threads and a stop flag: start() once, close() stops and joins everything."""

    def __init__(self, listen_port: int, upstream_port: int, rate_kbit: float, host: str) -> None:
        self.listen_port, self.upstream_port, self.host = listen_port, upstream_port, host
        self.bucket = TokenBucket(rate_kbit)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._started = False
        self.errors: list[str] = []      # unexpected errors of the worker threads, for the report

    def set_rate(self, rate_kbit: float) -> None:
        """New upstream capacity in kbit/s, effective for the next byte (thread-safe)."""
        self.bucket.set_rate(rate_kbit)

    @property
    def rate_kbit(self) -> float:
        return self.bucket.rate_kbit

    def _spawn(self, target, *args, name: str) -> None:
        t = threading.Thread(target=self._guard, args=(target, *args), name=name, daemon=False)
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()

    def _guard(self, target, *args) -> None:
        try:
            target(*args)
        except Exception as e:               # noqa: BLE001 - a proxy thread must not vanish silently
            if not self._stop.is_set():
                self.errors.append(f"{threading.current_thread().name}: {e!r}")

    def _served(self, sock: socket.socket, op):
        """op() each time sock is readable, until close() (which makes op fail: not an error)."""
        while not self._stop.is_set():
            r, _, _ = select.select([sock], [], [], POLL_S)
            if not r:
                continue
            try:
                yield op()
            except OSError:
                if self._stop.is_set():
                    return
                raise

    def _join_all(self) -> None:
        while True:
            with self._lock:
                alive = [t for t in self._threads if t.is_alive() and t is not threading.current_thread()]
            if not alive:
                return
            for t in alive:
                t.join(5.0)
                if t.is_alive():
                    raise RuntimeError(f"proxy thread {t.name} did not stop")

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ThrottlingTcpProxy(_Proxy):
    """127.0.0.1:listen_port -> host:upstream_port, client->server shaped to rate_kbit.

    Accepts any number of connections over its life (the broadcaster reconnects); all of them
    share one bucket, as they would share one link.
    """

    def __init__(self, listen_port: int, upstream_port: int, rate_kbit: float,
                 host: str = "127.0.0.1", rcvbuf: int = TCP_RCVBUF) -> None:
        super().__init__(listen_port, upstream_port, rate_kbit, host)
        self.rcvbuf = rcvbuf
        self.bytes_up = 0            # client -> server, forwarded
        self.bytes_down = 0          # server -> client
        self.connections = 0         # accepted over the proxy's life
        self.dropped = 0             # always 0: TCP is never dropped, it waits (API symmetry)
        self._socks: list[socket.socket] = []
        self._listener: socket.socket | None = None

    @property
    def bytes_forwarded(self) -> int:
        return self.bytes_up

    def start(self) -> ThrottlingTcpProxy:
        if self._started:
            raise RuntimeError("proxy already started")
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # before listen(): accepted sockets inherit both, and the SYN-ACK carries the MSS
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            ls.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, TCP_MSS)
            ls.bind((self.host, self.listen_port))
            ls.listen(8)
        except OSError as e:
            ls.close()
            raise OSError(e.errno, f"throttling TCP proxy cannot listen on {self.host}:"
                          f"{self.listen_port}: {e.strerror}") from None
        self.listen_port = ls.getsockname()[1]
        self._listener = ls
        self._started = True
        self._spawn(self._accept_loop, name=f"tcp-proxy-accept-{self.listen_port}")
        return self

    def _accept_loop(self) -> None:
        ls = self._listener
        for client, _ in self._served(ls, ls.accept):
            up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                up.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, TCP_SNDBUF)
                up.settimeout(5.0)
                up.connect((self.host, self.upstream_port))
                up.settimeout(None)
            except OSError as e:
                self.errors.append(f"upstream {self.host}:{self.upstream_port}: {e}")
                _close_quietly(up)
                _close_quietly(client)
                continue
            with self._lock:
                self.connections += 1
                n = self.connections
                self._socks += [client, up]
            done = threading.Barrier(2, action=lambda c=client, u=up: self._forget(c, u))
            self._spawn(self._pump_up, client, up, done, name=f"tcp-proxy-up-{n}")
            self._spawn(self._pump_down, up, client, done, name=f"tcp-proxy-down-{n}")

    def _forget(self, client: socket.socket, up: socket.socket) -> None:
        """Both directions of a connection ended: close its sockets."""
        with self._lock:
            self._socks = [s for s in self._socks if s is not client and s is not up]
        _close_quietly(client)
        _close_quietly(up)

    def _end(self, a: socket.socket, b: socket.socket, done: threading.Barrier) -> None:
        _shutdown_quietly(a)        # wakes the other direction's thread too
        _shutdown_quietly(b)
        try:
            done.wait(10.0)
        except threading.BrokenBarrierError:
            pass

    def _pump_up(self, src: socket.socket, dst: socket.socket, done: threading.Barrier) -> None:
        """Client -> server, read only as credit allows: the backlog stays in the client's kernel."""
        try:
            while not self._stop.is_set():
                credit = self.bucket.wait(TCP_MSS, self._stop)
                if credit is None:
                    return
                r, _, _ = select.select([src], [], [], POLL_S)
                if not r:
                    continue
                data = src.recv(max(1, min(int(credit), BURST_BYTES)))
                if not data:
                    return
                self.bucket.take(len(data))
                dst.sendall(data)
                with self._lock:
                    self.bytes_up += len(data)
        except OSError:
            return
        finally:
            self._end(src, dst, done)

    def _pump_down(self, src: socket.socket, dst: socket.socket, done: threading.Barrier) -> None:
        """Server -> client, unshaped."""
        try:
            while not self._stop.is_set():
                r, _, _ = select.select([src], [], [], POLL_S)
                if not r:
                    continue
                data = src.recv(65536)
                if not data:
                    return
                dst.sendall(data)
                with self._lock:
                    self.bytes_down += len(data)
        except OSError:
            return
        finally:
            self._end(src, dst, done)

    def close(self) -> None:
        """Stop accepting, cut every connection, join every thread, close every socket."""
        self._stop.set()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            _shutdown_quietly(s)
        self._join_all()
        for s in socks:
            _close_quietly(s)
        if self._listener is not None:
            _close_quietly(self._listener)
            self._listener = None


class _UdpClient:
    def __init__(self, addr, up: socket.socket) -> None:
        self.addr, self.up = addr, up
        self.last = time.monotonic()


class ThrottlingUdpProxy(_Proxy):
    """127.0.0.1:listen_port -> host:upstream_port for datagrams, client->server shaped.

    Arrivals go into one drop-tail queue of at most rate x queue_ms + burst bytes, like tbf's
    `latency`; a pacing thread sends from it at the shaped rate.
    Replies from the server (SRT ACK/NAK, handshake) go back to the client unshaped.
    """

    def __init__(self, listen_port: int, upstream_port: int, rate_kbit: float,
                 queue_ms: float = 300, host: str = "127.0.0.1") -> None:
        super().__init__(listen_port, upstream_port, rate_kbit, host)
        self.queue_ms = queue_ms
        self.bytes_up = 0                # client -> server, sent
        self.bytes_down = 0
        self.datagrams_up = 0
        self.datagrams_down = 0
        self.dropped = 0                 # datagrams dropped at the tail of the queue
        self.dropped_bytes = 0
        self.peak_queue_bytes = 0
        self._queue: collections.deque[tuple[_UdpClient, bytes]] = collections.deque()
        self._queued = 0
        self._qcond = threading.Condition(self._lock)
        self._clients: dict = {}
        self._listener: socket.socket | None = None

    @property
    def bytes_forwarded(self) -> int:
        return self.bytes_up

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def queue_limit(self) -> int:
        """Bytes the queue may hold: rate x queue_ms + burst, as tc computes tbf's `limit`
        from `latency` (tc/q_tbf.c)."""
        return int(self.bucket.rate_kbit * 1000 / 8 * self.queue_ms / 1000) + BURST_BYTES

    def start(self) -> ThrottlingUdpProxy:
        if self._started:
            raise RuntimeError("proxy already started")
        ls = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
            ls.bind((self.host, self.listen_port))
        except OSError as e:
            ls.close()
            raise OSError(e.errno, f"throttling UDP proxy cannot bind {self.host}:"
                          f"{self.listen_port}: {e.strerror}") from None
        self.listen_port = ls.getsockname()[1]
        self._listener = ls
        self._started = True
        self._spawn(self._receive_loop, name=f"udp-proxy-rx-{self.listen_port}")
        self._spawn(self._pace_loop, name=f"udp-proxy-pace-{self.listen_port}")
        return self

    def _client(self, addr) -> _UdpClient:
        with self._lock:
            c = self._clients.get(addr)
            if c is not None:
                c.last = time.monotonic()
                return c
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        up.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
        up.connect((self.host, self.upstream_port))
        c = _UdpClient(addr, up)
        with self._lock:
            self._clients[addr] = c
        self._spawn(self._reply_loop, c, name=f"udp-proxy-reply-{addr[1]}")
        return c

    def _receive_loop(self) -> None:
        ls = self._listener
        for data, addr in self._served(ls, lambda: ls.recvfrom(65536)):
            c = self._client(addr)
            limit = self.queue_limit()
            with self._qcond:
                if self._queued + len(data) > limit:
                    self.dropped += 1
                    self.dropped_bytes += len(data)
                    continue
                self._queue.append((c, data))
                self._queued += len(data)
                self.peak_queue_bytes = max(self.peak_queue_bytes, self._queued)
                self._qcond.notify()

    def _pace_loop(self) -> None:
        """Send the head of the queue once the bucket has credit for it."""
        while not self._stop.is_set():
            with self._qcond:
                if not self._queue:
                    self._qcond.wait(POLL_S)
                    continue
                c, data = self._queue[0]   # only this thread pops, so the head stays put
            if self.bucket.wait(len(data), self._stop) is None:
                return
            with self._qcond:
                self._queue.popleft()
                self._queued -= len(data)
            self.bucket.take(len(data))
            try:
                c.up.send(data)
            except OSError:
                continue               # e.g. ECONNREFUSED from an earlier datagram: like a lost packet
            with self._lock:
                self.bytes_up += len(data)
                self.datagrams_up += 1

    def _reply_loop(self, c: _UdpClient) -> None:
        """Server -> this client, unshaped; forgets the client after UDP_IDLE_S of silence."""
        try:
            while not self._stop.is_set():
                r, _, _ = select.select([c.up], [], [], POLL_S)
                if not r:
                    if time.monotonic() - c.last > UDP_IDLE_S:
                        return
                    continue
                try:
                    data = c.up.recv(65536)
                except ConnectionRefusedError:
                    continue           # the server is not listening (yet): ICMP, not fatal
                self._listener.sendto(data, c.addr)
                c.last = time.monotonic()
                with self._lock:
                    self.bytes_down += len(data)
                    self.datagrams_down += 1
        finally:
            with self._lock:
                if self._clients.get(c.addr) is c:
                    del self._clients[c.addr]
            _close_quietly(c.up)          # a datagram still queued for it is then lost

    def close(self) -> None:
        """Stop every thread, join them, close every socket; queued datagrams are discarded."""
        self._stop.set()
        with self._qcond:
            self._qcond.notify_all()
        self._join_all()
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
            self._queue.clear()
            self._queued = 0
        for c in clients:
            _close_quietly(c.up)
        if self._listener is not None:
            _close_quietly(self._listener)
            self._listener = None
