"""Connecting to an RTMP ingest in Python, with deadlines: TCP (TLS for rtmps), then the RTMP
handshake (C0/C1 -> S0/S1/S2, C2).

Waiting on a Python socket releases the GIL, so an ingest that accepts TCP and never
answers stalls only the thread that waits, and only until the deadline; it is reported as
silent, one that refuses or does not accept TCP as absent. The publisher's RTMP client
(rtmp_client) starts every session from connect_and_handshake().

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


def default_port(tls: bool) -> int:
    """The port an rtmp:// (1935) or rtmps:// (443) URL without one means, as FFmpeg reads it."""
    return 443 if tls else 1935


class IngestAbsent(ConnectionError):
    """No TCP connection to the ingest (refused, unreachable, timed out): nothing listens."""

    absent = True


class IngestSilent(ConnectionError):
    """The ingest accepted the connection but did not complete the RTMP handshake."""

    absent = False
    hung = False


class IngestHung(IngestSilent):
    """The ingest accepted the TCP connection and then did not answer the handshake at all
    within the deadline (a hung server, or a balancer with nothing behind it): once a
    handshake is answered again, it is back."""

    hung = True


def tcp_accepts(host: str, port: int, timeout_s: float) -> bool:
    """True when host:port accepts a TCP connection within timeout_s (closed at once)."""
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def handshake_answers(host: str, port: int, tls: bool, timeout_s: float) -> bool:
    """True when host:port completes an RTMP handshake within timeout_s (closed at once): the
    check that tells a hung ingest's return, where a TCP accept proves nothing."""
    try:
        rtmp_handshake(host, port, tls, timeout_s, f"{host}:{port}")
        return True
    except ConnectionError:
        return False


def rtmp_handshake(host: str, port: int, tls: bool, timeout_s: float, shown: str) -> None:
    """Connect and complete an RTMP handshake within timeout_s, then close.

    Raises IngestAbsent when the TCP connection fails, IngestSilent when the ingest (or its
    TLS layer) does not answer in time or answers something that is not RTMP. `shown` (the
    URL with its key masked) names the ingest in the messages.
    """
    connect_and_handshake(host, port, tls, time.monotonic() + timeout_s, shown,
                          verify_tls=False).close()


def connect_and_handshake(host: str, port: int, tls: bool, deadline: float, shown: str,
                          verify_tls: bool = True) -> socket.socket:
    """A TCP (or, for rtmps, TLS) connection to the ingest that completed the RTMP handshake
    (C0/C1 -> S0/S1/S2, C2) before `deadline` (time.monotonic()); raises as rtmp_handshake.

    verify_tls: check the certificate against the system's CAs and the host name (SNI is
    always sent); the liveness probe alone leaves that to whoever connects next.
    """
    try:
        sock = socket.create_connection((host, port),
                                        timeout=max(0.001, deadline - time.monotonic()))
    except OSError as exc:
        raise IngestAbsent(f"cannot connect to {shown}: {exc.strerror or exc}") from None
    try:
        if tls:
            sock = _tls_wrap(sock, host, deadline, shown, verify_tls)
        c1 = bytes(8) + os.urandom(HANDSHAKE_SIZE - 8)      # time 0, zero, random
        _send(sock, bytes([RTMP_VERSION]) + c1, deadline, shown)
        s0s1 = _recv_exactly(sock, 1 + HANDSHAKE_SIZE, deadline, shown)
        if s0s1[0] != RTMP_VERSION:
            raise IngestSilent(f"{shown} answered the RTMP handshake with version {s0s1[0]}: "
                               "not an RTMP ingest")
        _recv_exactly(sock, HANDSHAKE_SIZE, deadline, shown)            # S2
        _send(sock, s0s1[1:], deadline, shown)                          # C2 echoes S1
    except BaseException:
        sock.close()
        raise
    return sock


def _tls_wrap(sock: socket.socket, host: str, deadline: float, shown: str,
              verify: bool) -> socket.socket:
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    sock.settimeout(_left(deadline, shown, "the TLS handshake"))
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except TimeoutError:
        sock.close()
        raise IngestHung(f"{shown} accepted the connection but did not answer the TLS "
                         "handshake in time") from None
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        raise IngestSilent(f"TLS handshake with {shown} failed: its certificate is not "
                           f"trusted ({exc.verify_message})") from None
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
        raise IngestHung(f"{shown} accepted the connection but did not answer {what} in time")
    return left


def _silent(shown: str) -> IngestHung:
    return IngestHung(f"{shown} accepted the connection but did not answer the RTMP "
                        "handshake in time")
