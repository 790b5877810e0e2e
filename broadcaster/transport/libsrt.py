"""A thin, typed ctypes binding to the system libsrt (Debian libsrt1.5-gnutls).

PyAV's FFmpeg has no srt protocol, so the broadcaster talks to libsrt itself. Only what a
live MPEG-TS sender needs is bound: socket setup and options, caller connect, listener
accept, srt_sendmsg2, error and reject-reason strings, and srt_bistats. The CBytePerfMon
layout below mirrors /usr/include/srt/srt.h of libsrt 1.5 field by field (checked against
the C compiler's offsetof in tests/test_srt_binding.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import socket
import threading
from dataclasses import dataclass

_LIB_NAMES = ("libsrt-gnutls.so.1.5", "libsrt-openssl.so.1.5", "libsrt.so.1.5", "libsrt.so")

# SRT_SOCKOPT values (srt.h, libsrt 1.5).
SRTO_SNDSYN = 1
SRTO_RCVSYN = 2
SRTO_LINGER = 7
SRTO_SNDTIMEO = 13
SRTO_RCVTIMEO = 14
SRTO_REUSEADDR = 15
SRTO_LATENCY = 23
SRTO_PASSPHRASE = 26
SRTO_PBKEYLEN = 27
SRTO_CONNTIMEO = 36
SRTO_STREAMID = 46
SRTO_PAYLOADSIZE = 49
SRTO_TRANSTYPE = 50
SRTO_ENFORCEDENCRYPTION = 53
SRTO_PEERIDLETIMEO = 55
SRTT_LIVE = 0

# SRT_SOCKSTATUS
SRTS_CONNECTED = 5
SRTS_BROKEN = 6
SRTS_CLOSING = 7
SRTS_CLOSED = 8
SRTS_NONEXIST = 9

# SRT_ERRNO values; CONNECTION_GONE_ERRORS are those that mean "the peer is gone".
SRT_ECONNSETUP = 1000
SRT_ENOSERVER = 1001
SRT_ECONNREJ = 1002
SRT_ECONNFAIL = 2000
SRT_ECONNLOST = 2001
SRT_ENOCONN = 2002
SRT_EINVSOCK = 5004
SRT_EASYNCSND = 6001
SRT_EASYNCRCV = 6002
SRT_ETIMEOUT = 6003
CONNECTION_GONE_ERRORS = frozenset({SRT_ECONNFAIL, SRT_ECONNLOST, SRT_ENOCONN, SRT_EINVSOCK})

# SRT_REJECT_REASON
SRT_REJ_BADSECRET = 10
SRT_REJ_UNSECURE = 11
SRT_REJ_TIMEOUT = 16
SRT_REJ_PEER = 2
_REJECT_TEXT = {
    0: "unknown reason", 1: "system error", 2: "rejected by peer", 3: "resource problem",
    4: "bad handshake data", 5: "listener backlog exceeded", 6: "internal program error",
    7: "socket closing", 8: "peer SRT version too old", 9: "rendezvous cookie collision",
    10: "wrong passphrase", 11: "encryption mismatch (passphrase set on one side only)",
    12: "message API mismatch", 13: "congestion controller mismatch",
    14: "packet filter mismatch", 15: "group mismatch", 16: "connection timed out",
}

_LOG_CRIT = 2  # syslog level
SRT_LIVE_PAYLOAD = 1316  # 7 MPEG-TS packets, libsrt's default live payload size
SRT_PACKET_HEADER = 44     # SRT 16 + UDP 8 + IPv4 20: what libsrt adds per packet in its byte counters


def with_packet_headers(payload_bytes: float) -> float:
    """Live payload bytes (1316-byte messages) as libsrt's byte counters count them."""
    return payload_bytes * (SRT_LIVE_PAYLOAD + SRT_PACKET_HEADER) / SRT_LIVE_PAYLOAD


class CBytePerfMon(ctypes.Structure):
    """struct CBytePerfMon from srt.h (libsrt 1.5), in declaration order."""

    _fields_ = [
        ("msTimeStamp", ctypes.c_int64),
        ("pktSentTotal", ctypes.c_int64),
        ("pktRecvTotal", ctypes.c_int64),
        ("pktSndLossTotal", ctypes.c_int),
        ("pktRcvLossTotal", ctypes.c_int),
        ("pktRetransTotal", ctypes.c_int),
        ("pktSentACKTotal", ctypes.c_int),
        ("pktRecvACKTotal", ctypes.c_int),
        ("pktSentNAKTotal", ctypes.c_int),
        ("pktRecvNAKTotal", ctypes.c_int),
        ("usSndDurationTotal", ctypes.c_int64),
        ("pktSndDropTotal", ctypes.c_int),
        ("pktRcvDropTotal", ctypes.c_int),
        ("pktRcvUndecryptTotal", ctypes.c_int),
        ("byteSentTotal", ctypes.c_uint64),
        ("byteRecvTotal", ctypes.c_uint64),
        ("byteRcvLossTotal", ctypes.c_uint64),
        ("byteRetransTotal", ctypes.c_uint64),
        ("byteSndDropTotal", ctypes.c_uint64),
        ("byteRcvDropTotal", ctypes.c_uint64),
        ("byteRcvUndecryptTotal", ctypes.c_uint64),
        ("pktSent", ctypes.c_int64),
        ("pktRecv", ctypes.c_int64),
        ("pktSndLoss", ctypes.c_int),
        ("pktRcvLoss", ctypes.c_int),
        ("pktRetrans", ctypes.c_int),
        ("pktRcvRetrans", ctypes.c_int),
        ("pktSentACK", ctypes.c_int),
        ("pktRecvACK", ctypes.c_int),
        ("pktSentNAK", ctypes.c_int),
        ("pktRecvNAK", ctypes.c_int),
        ("mbpsSendRate", ctypes.c_double),
        ("mbpsRecvRate", ctypes.c_double),
        ("usSndDuration", ctypes.c_int64),
        ("pktReorderDistance", ctypes.c_int),
        ("pktRcvAvgBelatedTime", ctypes.c_double),
        ("pktRcvBelated", ctypes.c_int64),
        ("pktSndDrop", ctypes.c_int),
        ("pktRcvDrop", ctypes.c_int),
        ("pktRcvUndecrypt", ctypes.c_int),
        ("byteSent", ctypes.c_uint64),
        ("byteRecv", ctypes.c_uint64),
        ("byteRcvLoss", ctypes.c_uint64),
        ("byteRetrans", ctypes.c_uint64),
        ("byteSndDrop", ctypes.c_uint64),
        ("byteRcvDrop", ctypes.c_uint64),
        ("byteRcvUndecrypt", ctypes.c_uint64),
        ("usPktSndPeriod", ctypes.c_double),
        ("pktFlowWindow", ctypes.c_int),
        ("pktCongestionWindow", ctypes.c_int),
        ("pktFlightSize", ctypes.c_int),
        ("msRTT", ctypes.c_double),
        ("mbpsBandwidth", ctypes.c_double),
        ("byteAvailSndBuf", ctypes.c_int),
        ("byteAvailRcvBuf", ctypes.c_int),
        ("mbpsMaxBW", ctypes.c_double),
        ("byteMSS", ctypes.c_int),
        ("pktSndBuf", ctypes.c_int),
        ("byteSndBuf", ctypes.c_int),
        ("msSndBuf", ctypes.c_int),
        ("msSndTsbPdDelay", ctypes.c_int),
        ("pktRcvBuf", ctypes.c_int),
        ("byteRcvBuf", ctypes.c_int),
        ("msRcvBuf", ctypes.c_int),
        ("msRcvTsbPdDelay", ctypes.c_int),
        ("pktSndFilterExtraTotal", ctypes.c_int),
        ("pktRcvFilterExtraTotal", ctypes.c_int),
        ("pktRcvFilterSupplyTotal", ctypes.c_int),
        ("pktRcvFilterLossTotal", ctypes.c_int),
        ("pktSndFilterExtra", ctypes.c_int),
        ("pktRcvFilterExtra", ctypes.c_int),
        ("pktRcvFilterSupply", ctypes.c_int),
        ("pktRcvFilterLoss", ctypes.c_int),
        ("pktReorderTolerance", ctypes.c_int),
        ("pktSentUniqueTotal", ctypes.c_int64),
        ("pktRecvUniqueTotal", ctypes.c_int64),
        ("byteSentUniqueTotal", ctypes.c_uint64),
        ("byteRecvUniqueTotal", ctypes.c_uint64),
        ("pktSentUnique", ctypes.c_int64),
        ("pktRecvUnique", ctypes.c_int64),
        ("byteSentUnique", ctypes.c_uint64),
        ("byteRecvUnique", ctypes.c_uint64),
    ]


class SrtMsgCtrl(ctypes.Structure):
    """SRT_MSGCTRL: per-message options for srt_sendmsg2 (defaults from srt_msgctrl_init)."""

    _fields_ = [
        ("flags", ctypes.c_int),
        ("msgttl", ctypes.c_int),
        ("inorder", ctypes.c_int),
        ("boundary", ctypes.c_int),
        ("srctime", ctypes.c_int64),
        ("pktseq", ctypes.c_int32),
        ("msgno", ctypes.c_int32),
        ("grpdata", ctypes.c_void_p),
        ("grpdata_size", ctypes.c_size_t),
    ]


@dataclass(frozen=True)
class SrtStats:
    """One srt_bistats reading. Interval fields cover the time since the previous reading."""

    ms_timestamp: int          # ms since the socket started
    rtt_ms: float              # smoothed RTT
    snd_buf_ms: int            # timespan of unacknowledged data in the sender buffer
    snd_buf_pkts: int          # unacknowledged packets in the sender buffer
    snd_buf_bytes: int         # unacknowledged bytes in the sender buffer
    send_rate_mbps: float      # sending rate over the interval (includes retransmissions)
    bandwidth_mbps: float      # libsrt's link estimate: swings wildly, never use as a target
    flight_pkts: int
    pkt_sent: int              # interval counters
    pkt_snd_loss: int
    pkt_retrans: int
    pkt_snd_drop: int
    byte_sent: int
    byte_sent_unique: int
    pkt_sent_total: int        # totals since the connection began
    pkt_snd_loss_total: int
    pkt_retrans_total: int
    pkt_snd_drop_total: int
    byte_sent_total: int
    byte_sent_unique_total: int
    byte_retrans_total: int
    byte_snd_drop_total: int

    @classmethod
    def from_perf(cls, p: CBytePerfMon) -> "SrtStats":
        return cls(
            ms_timestamp=int(p.msTimeStamp), rtt_ms=float(p.msRTT),
            snd_buf_ms=int(p.msSndBuf), snd_buf_pkts=int(p.pktSndBuf),
            snd_buf_bytes=int(p.byteSndBuf), send_rate_mbps=float(p.mbpsSendRate),
            bandwidth_mbps=float(p.mbpsBandwidth), flight_pkts=int(p.pktFlightSize),
            pkt_sent=int(p.pktSent), pkt_snd_loss=int(p.pktSndLoss),
            pkt_retrans=int(p.pktRetrans), pkt_snd_drop=int(p.pktSndDrop),
            byte_sent=int(p.byteSent), byte_sent_unique=int(p.byteSentUnique),
            pkt_sent_total=int(p.pktSentTotal), pkt_snd_loss_total=int(p.pktSndLossTotal),
            pkt_retrans_total=int(p.pktRetransTotal), pkt_snd_drop_total=int(p.pktSndDropTotal),
            byte_sent_total=int(p.byteSentTotal), byte_sent_unique_total=int(p.byteSentUniqueTotal),
            byte_retrans_total=int(p.byteRetransTotal), byte_snd_drop_total=int(p.byteSndDropTotal),
        )


class SrtError(OSError):
    """A libsrt call failed; .srt_errno holds the SRT_ERRNO code."""

    def __init__(self, message: str, srt_errno: int = -1) -> None:
        super().__init__(message)
        self.srt_errno = srt_errno


class SrtLibraryMissing(RuntimeError):
    """No libsrt shared library could be loaded."""


_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()
_users = 0


def _load() -> ctypes.CDLL:
    global _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        errors = []
        names = list(_LIB_NAMES)
        found = ctypes.util.find_library("srt-gnutls") or ctypes.util.find_library("srt")
        if found:
            names.append(found)
        for name in names:
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError as exc:
                errors.append(f"{name}: {exc}")
        else:
            raise SrtLibraryMissing("libsrt not found (install Debian package libsrt1.5-gnutls); "
                                    + "; ".join(errors))
        i, p, c = ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p
        sigs = {
            "srt_startup": (i, []), "srt_cleanup": (i, []),
            "srt_create_socket": (i, []),
            "srt_setsockflag": (i, [i, i, p, i]), "srt_getsockflag": (i, [i, i, p, ctypes.POINTER(i)]),
            "srt_bind": (i, [i, p, i]), "srt_listen": (i, [i, i]),
            "srt_accept": (i, [i, p, ctypes.POINTER(i)]),
            "srt_connect": (i, [i, p, i]), "srt_close": (i, [i]),
            "srt_sendmsg2": (i, [i, c, i, ctypes.POINTER(SrtMsgCtrl)]),
            "srt_recvmsg": (i, [i, c, i]),
            "srt_getlasterror": (i, [ctypes.POINTER(i)]), "srt_getlasterror_str": (c, []),
            "srt_clearlasterror": (None, []),
            "srt_getrejectreason": (i, [i]), "srt_rejectreason_str": (c, [i]),
            "srt_bistats": (i, [i, ctypes.POINTER(CBytePerfMon), i, i]),
            "srt_getsockstate": (i, [i]), "srt_getversion": (ctypes.c_uint32, []),
            "srt_msgctrl_init": (None, [ctypes.POINTER(SrtMsgCtrl)]),
            "srt_getsockname": (i, [i, p, ctypes.POINTER(i)]),
            "srt_setloglevel": (None, [i]),
        }
        for fname, (res, args) in sigs.items():
            fn = getattr(lib, fname)
            fn.restype = res
            fn.argtypes = args
        _lib = lib
        return lib


def lib() -> ctypes.CDLL:
    """The loaded libsrt (raises SrtLibraryMissing)."""
    return _load()


def startup() -> None:
    """srt_startup, reference-counted so that every user may call cleanup() when done."""
    global _users
    srt = _load()
    with _lib_lock:
        if _users == 0:
            if srt.srt_startup() < 0:
                raise SrtError("srt_startup failed: " + last_error_str())
            # libsrt prints every failed call to stderr; failures reach us as SrtError.
            srt.srt_setloglevel(_LOG_CRIT)
        _users += 1


def cleanup() -> None:
    """Drop one startup() reference; srt_cleanup runs when the last user leaves."""
    global _users
    with _lib_lock:
        if _users == 0:
            return
        _users -= 1
        if _users == 0 and _lib is not None:
            _lib.srt_cleanup()


def version() -> str:
    v = _load().srt_getversion()
    return f"{v >> 16}.{(v >> 8) & 0xFF}.{v & 0xFF}"


def last_error() -> tuple[int, str]:
    srt = _load()
    code = srt.srt_getlasterror(None)
    text = srt.srt_getlasterror_str() or b""
    return code, text.decode("utf-8", "replace")


def last_error_str() -> str:
    return last_error()[1]


def reject_reason_text(code: int) -> str:
    return _REJECT_TEXT.get(code, f"reject code {code}")


def sockaddr_for(host: str, port: int, *, passive: bool = False) -> ctypes.Array:
    """A struct sockaddr_in/_in6 buffer for host:port (resolves names, first UDP address)."""
    if not host:
        host = "0.0.0.0"
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM, 0,
                                   socket.AI_PASSIVE if passive else 0)
    except socket.gaierror as exc:
        raise SrtError(f"cannot resolve SRT host {host!r}: {exc}") from exc
    family, _, _, _, addr = infos[0]
    ip = ipaddress.ip_address(addr[0])
    if family == socket.AF_INET:
        raw = (socket.AF_INET.to_bytes(2, "little") + port.to_bytes(2, "big")
               + ip.packed + bytes(8))
    else:
        scope = addr[3] if len(addr) > 3 else 0
        raw = (socket.AF_INET6.to_bytes(2, "little") + port.to_bytes(2, "big")
               + bytes(4) + ip.packed + scope.to_bytes(4, "little"))
    return ctypes.create_string_buffer(raw, len(raw))


class SrtSocket:
    """One SRT socket handle with typed option setters; close() is idempotent."""

    def __init__(self, handle: int | None = None) -> None:
        self._srt = _load()
        if handle is None:
            handle = self._srt.srt_create_socket()
            if handle < 0:
                raise SrtError("srt_create_socket failed: " + last_error_str(), last_error()[0])
        self.handle = handle
        self._closed = False

    def _check(self, rc: int, what: str) -> int:
        if rc < 0:
            code, text = last_error()
            raise SrtError(f"{what} failed: {text}", code)
        return rc

    def set_int(self, opt: int, value: int, name: str) -> None:
        v = ctypes.c_int(int(value))
        self._check(self._srt.srt_setsockflag(self.handle, opt, ctypes.byref(v), 4), f"set {name}")

    def set_int64(self, opt: int, value: int, name: str) -> None:
        v = ctypes.c_int64(int(value))
        self._check(self._srt.srt_setsockflag(self.handle, opt, ctypes.byref(v), 8), f"set {name}")

    def set_bool(self, opt: int, value: bool, name: str) -> None:
        v = ctypes.c_bool(bool(value))
        self._check(self._srt.srt_setsockflag(self.handle, opt, ctypes.byref(v), 1), f"set {name}")

    def set_str(self, opt: int, value: str, name: str) -> None:
        raw = value.encode("utf-8")
        buf = ctypes.create_string_buffer(raw, len(raw))
        # The error text deliberately names only the option, never the value (secrets).
        self._check(self._srt.srt_setsockflag(self.handle, opt, buf, len(raw)), f"set {name}")

    def get_int(self, opt: int, name: str) -> int:
        v = ctypes.c_int(0)
        n = ctypes.c_int(4)
        self._check(self._srt.srt_getsockflag(self.handle, opt, ctypes.byref(v), ctypes.byref(n)),
                    f"get {name}")
        return v.value

    def state(self) -> int:
        return int(self._srt.srt_getsockstate(self.handle))

    def reject_reason(self) -> int:
        return int(self._srt.srt_getrejectreason(self.handle))

    def bind(self, addr: ctypes.Array) -> None:
        self._check(self._srt.srt_bind(self.handle, addr, len(addr)), "srt_bind")

    def listen(self, backlog: int = 1) -> None:
        self._check(self._srt.srt_listen(self.handle, backlog), "srt_listen")

    def local_port(self) -> int:
        buf = ctypes.create_string_buffer(128)
        n = ctypes.c_int(128)
        self._check(self._srt.srt_getsockname(self.handle, buf, ctypes.byref(n)), "srt_getsockname")
        return int.from_bytes(buf.raw[2:4], "big")

    def accept(self) -> "SrtSocket":
        buf = ctypes.create_string_buffer(128)
        n = ctypes.c_int(128)
        h = self._srt.srt_accept(self.handle, buf, ctypes.byref(n))
        self._check(h, "srt_accept")
        return SrtSocket(h)

    def connect(self, addr: ctypes.Array) -> None:
        self._check(self._srt.srt_connect(self.handle, addr, len(addr)), "srt_connect")

    def sendmsg(self, data: bytes) -> int:
        """srt_sendmsg2 with default message control; returns bytes sent or raises SrtError."""
        return self._check(self._srt.srt_sendmsg2(self.handle, data, len(data), None),
                           "srt_sendmsg2")

    def recvmsg(self, size: int = 1500) -> bytes:
        buf = ctypes.create_string_buffer(size)
        n = self._check(self._srt.srt_recvmsg(self.handle, buf, size), "srt_recvmsg")
        return buf.raw[:n]

    def bistats(self, *, clear: bool = True) -> SrtStats:
        perf = CBytePerfMon()
        self._check(self._srt.srt_bistats(self.handle, ctypes.byref(perf), int(clear), 1),
                    "srt_bistats")
        return SrtStats.from_perf(perf)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._srt.srt_close(self.handle)
