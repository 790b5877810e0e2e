"""Checks on an RTMP ingest made in Python, with timeouts, before FFmpeg is let near it.

PyAV opens an output URL (avio_open, then the header) while holding the GIL and without
any timeout: an ingest that accepts TCP and never answers would freeze every thread of the
process inside FFmpeg's poll(). So, first, Python connects and runs the RTMP handshake
(C0/C1 -> S0/S1/S2, C2; over TLS for rtmps) on a socket of its own with a deadline; waiting
on that socket releases the GIL, and an ingest that stays silent is reported as such.
FFmpeg connects only to an ingest that just answered.

The same module gives the cheap check used while backing off: does the ingest's port accept
a TCP connection at all (an absent ingest refuses or does not answer; a present one accepts).
"""

from __future__ import annotations

import os
import socket
import ssl
import time

RTMP_VERSION = 3
HANDSHAKE_SIZE = 1536


class IngestAbsent(ConnectionError):
    """No TCP connection to the ingest (refused, unreachable, timed out): nothing listens."""

    absent = True


class IngestSilent(ConnectionError):
    """The ingest accepted the connection but did not complete the RTMP handshake in time."""

    absent = False


def tcp_accepts(host: str, port: int, timeout_s: float) -> bool:
    """True when host:port accepts a TCP connection within timeout_s (closed at once)."""
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def rtmp_handshake(host: str, port: int, tls: bool, timeout_s: float, shown: str) -> None:
    """Connect and complete an RTMP handshake within timeout_s, then close.

    Raises IngestAbsent when the TCP connection fails, IngestSilent when the ingest (or its
    TLS layer) does not answer in time or answers something that is not RTMP. `shown` (the
    URL with its key masked) names the ingest in the messages.
    """
    deadline = time.monotonic() + timeout_s
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        raise IngestAbsent(f"cannot connect to {shown}: {exc.strerror or exc}") from None
    try:
        if tls:
            sock = _tls_wrap(sock, host, deadline, shown)
        c1 = bytes(8) + os.urandom(HANDSHAKE_SIZE - 8)      # time 0, zero, random
        _send(sock, bytes([RTMP_VERSION]) + c1, deadline, shown)
        s0s1 = _recv_exactly(sock, 1 + HANDSHAKE_SIZE, deadline, shown)
        if s0s1[0] != RTMP_VERSION:
            raise IngestSilent(f"{shown} answered the RTMP handshake with version {s0s1[0]}: "
                               "not an RTMP ingest")
        _recv_exactly(sock, HANDSHAKE_SIZE, deadline, shown)            # S2
        _send(sock, s0s1[1:], deadline, shown)                          # C2 echoes S1
    finally:
        sock.close()


def _tls_wrap(sock: socket.socket, host: str, deadline: float, shown: str) -> socket.socket:
    # Liveness only: FFmpeg's own TLS session decides about the certificate.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    sock.settimeout(_left(deadline, shown, "the TLS handshake"))
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except TimeoutError:
        sock.close()
        raise IngestSilent(f"{shown} accepted the connection but did not answer the TLS "
                           "handshake in time") from None
    except (ssl.SSLError, OSError) as exc:
        sock.close()
        raise IngestSilent(f"TLS handshake with {shown} failed: {exc}") from None


def _send(sock: socket.socket, data: bytes, deadline: float, shown: str) -> None:
    sock.settimeout(_left(deadline, shown, "the RTMP handshake"))
    try:
        sock.sendall(data)
    except TimeoutError:
        raise _silent(shown) from None
    except OSError as exc:
        raise IngestSilent(f"{shown} closed the connection during the RTMP handshake: "
                           f"{exc.strerror or exc}") from None


def _recv_exactly(sock: socket.socket, n: int, deadline: float, shown: str) -> bytes:
    data = bytearray()
    while len(data) < n:
        sock.settimeout(_left(deadline, shown, "the RTMP handshake"))
        try:
            chunk = sock.recv(n - len(data))
        except TimeoutError:
            raise _silent(shown) from None
        except OSError as exc:
            raise IngestSilent(f"{shown} closed the connection during the RTMP handshake: "
                               f"{exc.strerror or exc}") from None
        if not chunk:
            raise IngestSilent(f"{shown} closed the connection during the RTMP handshake")
        data += chunk
    return bytes(data)


def _left(deadline: float, shown: str, what: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise IngestSilent(f"{shown} accepted the connection but did not answer {what} in time")
    return left


def _silent(shown: str) -> IngestSilent:
    return IngestSilent(f"{shown} accepted the connection but did not answer the RTMP "
                        "handshake in time")
