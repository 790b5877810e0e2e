"""SRT output: a file-like sink PyAV muxes MPEG-TS into, sent as 1316-byte live messages.

    sink = open_srt("srt://ingest:9000?streamid=...&passphrase=...", connect_timeout_s=3)
    container = av.open(sink, mode="w", format="mpegts", container_options=LIVE_MUX_OPTIONS)
    ...            # mux as usual; sink.stats() each tick for the rate controller
    container.close(); sink.close()

write() raises SrtConnectionLost (a ConnectionError) once the peer is gone, so the publisher
reopens with its usual backoff. Listener mode waits for one caller (OBS, a relay) to connect.
"""

from __future__ import annotations

import logging
import threading
import time

from broadcaster.transport import libsrt
from broadcaster.transport.libsrt import SrtError, SrtSocket, SrtStats
from broadcaster.transport.sink import WriteOnlySink
from broadcaster.transport.srt_url import SrtUrl, parse_srt_url

log = logging.getLogger(__name__)

PAYLOAD = libsrt.SRT_LIVE_PAYLOAD
TS_PACKET = 188
_NULL_TS_PACKET = bytes([0x47, 0x1F, 0xFF, 0x10]) + bytes([0xFF]) * 184  # PID 0x1FFF stuffing
SEND_STALL_TIMEOUT_MS = 3000
PEER_IDLE_TIMEOUT_MS = 5000
CLOSE_LINGER_S = 1.0


class SrtConnectError(ConnectionError):
    """Connecting (or waiting for a caller) failed; the message says why, never the secret.

    reject_reason: libsrt's SRT_REJ_* code when the peer rejected the handshake, else None
    (SRT_REJ_BADSECRET / SRT_REJ_UNSECURE: the passphrases do not match).
    """

    def __init__(self, message: str, reject_reason: int | None = None) -> None:
        super().__init__(message)
        self.reject_reason = reject_reason

    @property
    def passphrase_mismatch(self) -> bool:
        return self.reject_reason in (libsrt.SRT_REJ_BADSECRET, libsrt.SRT_REJ_UNSECURE)


class SrtConnectionLost(ConnectionError):
    """The SRT peer went away while sending; reconnect with backoff."""


def _configure(sock: SrtSocket, url: SrtUrl, connect_timeout_ms: int) -> None:
    sock.set_int(libsrt.SRTO_TRANSTYPE, libsrt.SRTT_LIVE, "SRTO_TRANSTYPE")
    sock.set_int(libsrt.SRTO_PAYLOADSIZE, PAYLOAD, "SRTO_PAYLOADSIZE")
    sock.set_int(libsrt.SRTO_LATENCY, url.latency_ms, "SRTO_LATENCY")
    sock.set_int(libsrt.SRTO_CONNTIMEO, connect_timeout_ms, "SRTO_CONNTIMEO")
    sock.set_int(libsrt.SRTO_PEERIDLETIMEO, PEER_IDLE_TIMEOUT_MS, "SRTO_PEERIDLETIMEO")
    sock.set_bool(libsrt.SRTO_SNDSYN, True, "SRTO_SNDSYN")
    sock.set_int(libsrt.SRTO_SNDTIMEO, SEND_STALL_TIMEOUT_MS, "SRTO_SNDTIMEO")
    if url.passphrase:
        sock.set_str(libsrt.SRTO_PASSPHRASE, url.passphrase, "SRTO_PASSPHRASE")
        if url.pbkeylen:
            sock.set_int(libsrt.SRTO_PBKEYLEN, url.pbkeylen, "SRTO_PBKEYLEN")
    if url.streamid:
        sock.set_str(libsrt.SRTO_STREAMID, url.streamid, "SRTO_STREAMID")


class SrtSink(WriteOnlySink):
    """A write-only file object over a connected SRT socket.

    Bytes are buffered and sent in exactly 1316-byte messages (7 TS packets); the tail left
    at close(), when it is whole TS packets, is padded with null packets to a full message.
    Thread-safe: write() from the publisher thread, stats() from the link monitor's.
    """

    def __init__(self, sock: SrtSocket, url: SrtUrl) -> None:
        self._sock = sock
        self.url = url
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._closed = False
        self._lost: str | None = None
        self.bytes_written = 0
        self.bytes_handed = 0     # payload passed to libsrt (bytes_written less the partial tail)
        self.messages_sent = 0

    # --- file protocol used by PyAV -------------------------------------------------------
    def write(self, data) -> int:
        n = len(data)
        with self._lock:
            if self._closed:
                raise ValueError("write to a closed SrtSink")
            if self._lost is not None:
                raise SrtConnectionLost(self._lost)
            self._buf += data
            self.bytes_written += n
            sent = 0
            try:
                while len(self._buf) - sent >= PAYLOAD:
                    self._send(bytes(self._buf[sent:sent + PAYLOAD]))
                    sent += PAYLOAD
            finally:
                del self._buf[:sent]
        return n

    def flush(self) -> None:
        """Nothing to do: partial messages wait for the next write to keep 1316-byte payloads."""
        if self._lost is not None:
            raise SrtConnectionLost(self._lost)

    @property
    def link_bytes(self) -> float:
        """bytes_handed as libsrt's byte counters (and so the meter's rates) count them."""
        return libsrt.with_packet_headers(self.bytes_handed)

    def close(self) -> None:
        """Send the padded tail (if still connected) and close the socket. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._buf and self._lost is None:
                    tail = bytes(self._buf)
                    if len(tail) % TS_PACKET == 0:
                        tail += _NULL_TS_PACKET * ((PAYLOAD - len(tail)) // TS_PACKET)
                    self._send(tail)
                if self._lost is None:
                    self._drain(CLOSE_LINGER_S)
            except SrtConnectionLost:
                pass
            finally:
                self._buf.clear()
                self._sock.close()
                libsrt.cleanup()

    def _drain(self, limit_s: float) -> None:
        # Live mode does not linger: wait (bounded) until the peer acknowledged the tail.
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            try:
                if self._sock.bistats(clear=False).snd_buf_pkts == 0:
                    # Acknowledged is not yet played out: the receiver holds packets for
                    # its latency and drops them if we shut down first.
                    time.sleep(min(max(0.0, deadline - time.monotonic()),
                                   self.url.latency_ms / 1000.0 + 0.05))
                    return
            except SrtError:
                return
            time.sleep(0.01)


    # --- measurements --------------------------------------------------------------------
    def stats(self) -> SrtStats:
        """srt_bistats now; interval counters cover the time since the previous stats() call."""
        with self._lock:
            if self._closed:
                raise ValueError("stats of a closed SrtSink")
            try:
                return self._sock.bistats(clear=True)
            except SrtError as exc:
                raise SrtConnectionLost(f"SRT connection to {self.url.display()} lost: {exc}") from None

    @property
    def connected(self) -> bool:
        return not self._closed and self._lost is None and self._sock.state() == libsrt.SRTS_CONNECTED

    def _send(self, payload: bytes) -> None:
        try:
            self._sock.sendmsg(payload)
            self.messages_sent += 1
            self.bytes_handed += len(payload)
        except SrtError as exc:
            if exc.srt_errno == libsrt.SRT_ETIMEOUT:
                why = f"send stalled for {SEND_STALL_TIMEOUT_MS} ms"
            else:
                why = str(exc)
            self._lost = f"SRT connection to {self.url.display()} lost: {why}"
            log.warning("%s", self._lost)
            raise SrtConnectionLost(self._lost) from None


def _connect_error(url: SrtUrl, sock: SrtSocket, exc: SrtError, timeout_ms: int) -> SrtConnectError:
    where = f"SRT connection to {url.display()}"
    if exc.srt_errno == libsrt.SRT_ECONNREJ:
        reason = sock.reject_reason()
        if reason == libsrt.SRT_REJ_TIMEOUT:
            return SrtConnectError(f"{where} timed out after {timeout_ms} ms "
                                   "(is a listener running there?)")
        return SrtConnectError(f"{where} rejected: {libsrt.reject_reason_text(reason)}", reason)
    if exc.srt_errno == libsrt.SRT_ENOSERVER:
        return SrtConnectError(f"{where} timed out after {timeout_ms} ms "
                               "(is a listener running there?)")
    return SrtConnectError(f"{where} failed: {exc}")


def open_srt(url: str | SrtUrl, *, connect_timeout_s: float | None = None,
             stop: threading.Event | None = None) -> SrtSink:
    """Connect as caller, or in listener mode wait for one caller; return a ready SrtSink.

    connect_timeout_s overrides the URL's connect_timeout (caller: handshake timeout;
    listener: how long to wait for a caller, None = the URL's value). `stop` aborts a
    listener's wait. Raises SrtUrlError for a bad URL, SrtConnectError when no connection.
    """
    parsed = parse_srt_url(url) if isinstance(url, str) else url
    timeout_ms = (int(connect_timeout_s * 1000) if connect_timeout_s is not None
                  else parsed.connect_timeout_ms)
    timeout_ms = max(100, timeout_ms)
    libsrt.startup()
    try:
        if parsed.mode == "caller":
            sink = _open_caller(parsed, timeout_ms)
        else:
            sink = _open_listener(parsed, timeout_ms, stop)
    except BaseException:
        libsrt.cleanup()
        raise
    log.info("SRT %s connected to %s (latency %d ms, %s)", parsed.mode, parsed.display(),
             parsed.latency_ms, "encrypted" if parsed.passphrase else "unencrypted")
    return sink


def _open_caller(url: SrtUrl, timeout_ms: int) -> SrtSink:
    sock = SrtSocket()
    try:
        _configure(sock, url, timeout_ms)
        sock.connect(libsrt.sockaddr_for(url.host, url.port))
    except SrtError as exc:
        err = _connect_error(url, sock, exc, timeout_ms)
        sock.close()
        raise err from None
    return SrtSink(sock, url)


def _open_listener(url: SrtUrl, timeout_ms: int, stop: threading.Event | None) -> SrtSink:
    listener = SrtSocket()
    try:
        _configure(listener, url, timeout_ms)
        listener.set_bool(libsrt.SRTO_RCVSYN, False, "SRTO_RCVSYN")  # poll accept, stoppable
        listener.bind(libsrt.sockaddr_for(url.host, url.port, passive=True))
        listener.listen(1)
        log.info("SRT listener on %s waiting for a caller", url.display())
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            try:
                conn = listener.accept()
                break
            except SrtError as exc:
                if exc.srt_errno != libsrt.SRT_EASYNCRCV:
                    raise
            if stop is not None and stop.is_set():
                raise SrtConnectError(f"SRT listener on {url.display()} stopped before a caller came")
            if time.monotonic() >= deadline:
                raise SrtConnectError(f"SRT listener on {url.display()}: no caller within "
                                      f"{timeout_ms} ms")
            time.sleep(0.02)
    except SrtError as exc:
        raise SrtConnectError(f"SRT listener on {url.display()} failed: {exc}") from None
    finally:
        listener.close()
    try:
        conn.set_bool(libsrt.SRTO_SNDSYN, True, "SRTO_SNDSYN")
        conn.set_int(libsrt.SRTO_SNDTIMEO, SEND_STALL_TIMEOUT_MS, "SRTO_SNDTIMEO")
    except SrtError as exc:
        conn.close()
        raise SrtConnectError(f"SRT listener on {url.display()}: {exc}") from None
    return SrtSink(conn, url)
