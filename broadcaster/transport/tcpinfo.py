"""Read Linux TCP_INFO for the RTMP socket, and keep its send buffer small.

A write does not block until seconds of media sit in the kernel send buffer, so the
congestion signal comes from the socket: tcpi_notsent_bytes (queued, not yet sent),
tcpi_rtt, bytes_acked (what the link really carried). The publisher's RTMP client owns its
socket and reads it directly (read_tcp_info_from_socket, set_send_limits). A socket some
other code owns is found in /proc by its peer address (find_tcp_socket_fd); every read
dup()s that descriptor and checks it is still the same socket (inode), so a closed and
reused fd is never misread, and the connection is never kept open behind its owner's back.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import struct
from dataclasses import dataclass

log = logging.getLogger(__name__)

TCP_INFO = getattr(socket, "TCP_INFO", 11)
TCP_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", 25)
_TCP_ESTABLISHED = "01"

# struct tcp_info (linux/tcp.h) up to tcpi_bytes_retrans; naturally aligned, no padding.
_LAYOUT = [
    ("state", "B"), ("ca_state", "B"), ("retransmits", "B"), ("probes", "B"),
    ("backoff", "B"), ("options", "B"), ("wscale", "B"), ("app_limited_flags", "B"),
    ("rto", "I"), ("ato", "I"), ("snd_mss", "I"), ("rcv_mss", "I"),
    ("unacked", "I"), ("sacked", "I"), ("lost", "I"), ("retrans", "I"), ("fackets", "I"),
    ("last_data_sent", "I"), ("last_ack_sent", "I"), ("last_data_recv", "I"),
    ("last_ack_recv", "I"), ("pmtu", "I"), ("rcv_ssthresh", "I"), ("rtt", "I"),
    ("rttvar", "I"), ("snd_ssthresh", "I"), ("snd_cwnd", "I"), ("advmss", "I"),
    ("reordering", "I"), ("rcv_rtt", "I"), ("rcv_space", "I"), ("total_retrans", "I"),
    ("pacing_rate", "Q"), ("max_pacing_rate", "Q"), ("bytes_acked", "Q"),
    ("bytes_received", "Q"), ("segs_out", "I"), ("segs_in", "I"), ("notsent_bytes", "I"),
    ("min_rtt", "I"), ("data_segs_in", "I"), ("data_segs_out", "I"), ("delivery_rate", "Q"),
    ("busy_time", "Q"), ("rwnd_limited", "Q"), ("sndbuf_limited", "Q"), ("delivered", "I"),
    ("delivered_ce", "I"), ("bytes_sent", "Q"), ("bytes_retrans", "Q"),
]
_FMT = "=" + "".join(code for _, code in _LAYOUT)
_SIZE = struct.calcsize(_FMT)


@dataclass(frozen=True)
class TcpInfo:
    """The TCP_INFO fields the link meter uses. Times in ms, rates in bytes/s."""

    rtt_ms: float
    rttvar_ms: float
    min_rtt_ms: float
    notsent_bytes: int          # written by the app, not yet sent: the media hiding in the kernel
    unacked_segments: int
    snd_mss: int
    snd_cwnd: int               # segments
    delivery_rate: int          # bytes/s, the kernel's most recent delivery-rate sample
    delivery_rate_app_limited: bool
    bytes_acked: int
    bytes_sent: int
    bytes_retrans: int
    retransmits: int            # current unrecovered retransmissions
    total_retrans: int
    busy_time_us: int
    sndbuf_limited_us: int

    @property
    def bytes_written(self) -> int:
        """Bytes the application wrote to the socket so far: sent once, or still unsent."""
        return self.bytes_sent - self.bytes_retrans + self.notsent_bytes


class TcpInfoUnavailable(OSError):
    """The kernel returned a TCP_INFO without the fields needed (kernel older than 4.19)."""


def read_tcp_info_from_socket(sock: socket.socket) -> TcpInfo:
    raw = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 256)
    if len(raw) < _SIZE:
        raise TcpInfoUnavailable(f"TCP_INFO returned {len(raw)} bytes, need {_SIZE} (kernel >= 4.19)")
    v = dict(zip((name for name, _ in _LAYOUT), struct.unpack_from(_FMT, raw)))
    return TcpInfo(
        rtt_ms=v["rtt"] / 1000.0, rttvar_ms=v["rttvar"] / 1000.0, min_rtt_ms=v["min_rtt"] / 1000.0,
        notsent_bytes=v["notsent_bytes"], unacked_segments=v["unacked"], snd_mss=v["snd_mss"],
        snd_cwnd=v["snd_cwnd"], delivery_rate=v["delivery_rate"],
        delivery_rate_app_limited=bool(v["app_limited_flags"] & 1),
        bytes_acked=v["bytes_acked"], bytes_sent=v["bytes_sent"],
        bytes_retrans=v["bytes_retrans"], retransmits=v["retransmits"],
        total_retrans=v["total_retrans"], busy_time_us=v["busy_time"],
        sndbuf_limited_us=v["sndbuf_limited"])


def _fd_inode(fd: int) -> int | None:
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    if target.startswith("socket:[") and target.endswith("]"):
        return int(target[8:-1])
    return None


def _parse_proc_addr(hexaddr: str) -> tuple[ipaddress._BaseAddress, int]:
    ip_hex, port_hex = hexaddr.split(":")
    raw = bytes.fromhex(ip_hex)
    if len(raw) == 4:
        ip = ipaddress.IPv4Address(raw[::-1])
    else:  # four little-endian 32-bit words
        ip = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return ip, int(port_hex, 16)


def _established_inodes(peer_ips: set, port: int) -> set[int]:
    found = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if len(cols) < 10 or cols[3] != _TCP_ESTABLISHED:
                        continue
                    ip, rport = _parse_proc_addr(cols[2])
                    if rport != port:
                        continue
                    if getattr(ip, "ipv4_mapped", None) is not None:
                        ip = ip.ipv4_mapped
                    if ip in peer_ips:
                        found.add(int(cols[9]))
        except FileNotFoundError:
            continue
    return found


def _resolve(host: str, port: int) -> set:
    ips = set()
    for info in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        ip = ipaddress.ip_address(info[4][0].split("%")[0])
        if getattr(ip, "ipv4_mapped", None) is not None:
            ip = ip.ipv4_mapped
        ips.add(ip)
    return ips


@dataclass(frozen=True)
class TcpSocketHandle:
    """A descriptor owned by someone else, pinned to the socket inode it had."""

    fd: int
    inode: int


def find_tcp_socket_fd(host: str, port: int) -> TcpSocketHandle | None:
    """The established TCP connection of this process to host:port, or None.

    With several matches the newest (highest) fd wins: after a reconnect that is the live one.
    """
    peers = _resolve(host, port)
    inodes = _established_inodes(peers, port)
    if not inodes:
        return None
    best = None
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        ino = _fd_inode(fd)
        if ino in inodes and (best is None or fd > best.fd):
            best = TcpSocketHandle(fd, ino)
    return best


class SocketGone(OSError):
    """The descriptor no longer refers to the socket it was found as (closed by its owner)."""


def _with_socket(handle: TcpSocketHandle, fn):
    if _fd_inode(handle.fd) != handle.inode:
        raise SocketGone(f"fd {handle.fd} is no longer the TCP socket it was")
    dup = os.dup(handle.fd)
    try:
        if os.fstat(dup).st_ino != handle.inode:
            raise SocketGone(f"fd {handle.fd} is no longer the TCP socket it was")
        s = socket.socket(fileno=dup)
        try:
            return fn(s)
        finally:
            s.detach()
    finally:
        os.close(dup)


def read_tcp_info(handle: TcpSocketHandle) -> TcpInfo:
    """TCP_INFO of a socket found with find_tcp_socket_fd (raises SocketGone once closed)."""
    return _with_socket(handle, read_tcp_info_from_socket)


def limit_send_buffer(handle: TcpSocketHandle, *, notsent_lowat: int | None = 64 * 1024,
                      sndbuf: int | None = None) -> None:
    """set_send_limits() on a socket found with find_tcp_socket_fd."""
    _with_socket(handle, lambda s: set_send_limits(s, notsent_lowat=notsent_lowat, sndbuf=sndbuf))


def set_send_limits(sock: socket.socket, *, notsent_lowat: int | None = 64 * 1024,
                    sndbuf: int | None = None) -> None:
    """Keep media from hiding in the kernel: cap unsent data and (optionally) SO_SNDBUF.

    TCP_NOTSENT_LOWAT makes the socket report writable (and a send that waits for it wait)
    only while less than notsent_lowat bytes are unsent, so writes stall early and the
    backlog stays in the broadcaster, where it is visible. sndbuf (bytes; Linux doubles it)
    also bounds in-flight data, at the cost of throughput on long fat links.
    """
    if notsent_lowat is not None:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT, int(notsent_lowat))
    if sndbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, int(sndbuf))
