"""Publishing to an RTMP(S) ingest from Python: a file object PyAV's FLV muxer writes into.

    sink = open_rtmp("rtmp://ingest/live/KEY", shown, connect_timeout_s=5, write_timeout_s=5)
    container = av.open(sink, mode="w", format="flv", container_options=LIVE_MUX_OPTIONS)
    ...            # mux as usual; sink.tcp_info() for the rate controller
    container.close(); sink.close()

Connecting runs handshake, connect, releaseStream/FCPublish, createStream and publish on a
Python socket, every step within connect_timeout_s; media writes are bounded by
write_timeout_s and can be aborted from another thread (abort()). Python releases the GIL
while it waits on the socket, so an ingest that goes silent at any step stalls only the
thread that talks to it. write() cuts the FLV stream into tags and sends each as one RTMP
message (audio 8, video 9, onMetaData as @setDataFrame data 18), with chunk streams as
FFmpeg uses them. The stream key never appears in a message: `shown` names the ingest.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from broadcaster.redact import MASK, redact
from broadcaster.transport import amf0
from broadcaster.transport import rtmp_chunk as rc
from broadcaster.transport.flv_tags import FlvTagSplitter
from broadcaster.transport.rtmp_probe import IngestSilent, connect_and_handshake, default_port
from broadcaster.transport.sink import WriteOnlySink
from broadcaster.transport.tcpinfo import (
    TcpInfo,
    read_tcp_info_from_socket,
    set_send_limits,
)

log = logging.getLogger(__name__)

FLASH_VER = "FMLE/3.0 (compatible; FMSc/1.0)"   # what FFmpeg says when it publishes
OUT_CHUNK_SIZE = 4096
CLOSE_TIMEOUT_S = 1.0
# A send waits write_timeout_s plus this before it gives up by itself: the publisher's stall
# guard (checking four times a second) aborts a blocked write first and says so; this ends
# one it does not watch.
SEND_TIMEOUT_MARGIN_S = 1.0
# chunk stream ids as FFmpeg's rtmppkt.h names them
CS_NETWORK, CS_SYSTEM, CS_AUDIO, CS_VIDEO, CS_SOURCE = 2, 3, 4, 6, 8
PING_REQUEST, PING_RESPONSE = 6, 7
_SET_DATA_FRAME = amf0.encode("@setDataFrame")
_FLV_TYPES = {rc.AUDIO: CS_AUDIO, rc.VIDEO: CS_VIDEO, rc.DATA_AMF0: CS_AUDIO}


class RtmpRefused(ConnectionError):
    """The ingest answered and said no (application, stream key): not an absence."""

    absent = False


class RtmpConnectionLost(ConnectionError):
    """The ingest went away, stopped reading or ended the stream while publishing."""


@dataclass(frozen=True)
class RtmpUrl:
    host: str
    port: int
    tls: bool
    app: str
    stream_key: str
    tc_url: str


def parse_rtmp_url(url: str) -> RtmpUrl:
    """rtmp[s]://host[:port]/app/key: the application is the first path segment, the stream
    key all after it (query included), as FFmpeg splits it. Raises ValueError."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("rtmp", "rtmps"):
        raise ValueError("not an rtmp:// or rtmps:// URL")
    tls = scheme == "rtmps"
    host = parts.hostname or "127.0.0.1"
    try:
        port = parts.port or default_port(tls)
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    path = parts.path.lstrip("/")
    app, _, key = path.partition("/")
    if parts.query:
        key = f"{key}?{parts.query}"
    if not app or not key:
        raise ValueError("the URL needs an application and a stream key: "
                         f"{scheme}://host/app/KEY")
    shown_host = f"[{host}]" if ":" in host else host
    netloc = shown_host if port == default_port(tls) else f"{shown_host}:{port}"
    return RtmpUrl(host, port, tls, app, key, f"{scheme}://{netloc}/{app}")


class RtmpSink(WriteOnlySink):
    """A connected, publishing RTMP session as a write-only file object.

    write() is called by the muxer's thread only; abort() may come from any thread (the
    stall guard) and makes the blocked or next write fail.
    """

    def __init__(self, sock: socket.socket, url: RtmpUrl, shown: str, write_timeout_s: float):
        self._sock = sock
        self.url = url
        self.shown = shown
        self.write_timeout_s = write_timeout_s
        self._reader = rc.ChunkReader()
        self._poller = select.poll()        # (select() fails on descriptors above 1023)
        self._poller.register(sock, select.POLLIN)
        self._splitter = FlvTagSplitter()
        self._received = 0
        self._acked = 0
        self._window = 0              # the peer's acknowledgement window (0: none asked for)
        self.stream_id = 0
        self.publishing = False
        self._closed = False
        self._lost: str | None = None
        self._close_lock = threading.Lock()
        self.bytes_written = 0        # FLV bytes taken from the muxer
        self.bytes_sent = 0           # RTMP bytes handed to the socket

    # --- connecting -----------------------------------------------------------------------
    def publish(self, deadline: float) -> None:
        """connect, releaseStream, FCPublish, createStream, publish; returns once the ingest
        says NetStream.Publish.Start. Raises RtmpRefused, IngestSilent, ConnectionError."""
        url = self.url
        self._send(CS_NETWORK, rc.SET_CHUNK_SIZE, 0, 0, struct.pack(">I", OUT_CHUNK_SIZE), deadline)
        self._command("connect", 1, {"app": url.app, "type": "nonprivate", "flashVer": FLASH_VER,
                                     "swfUrl": url.tc_url, "tcUrl": url.tc_url}, deadline=deadline)
        self._await_result(1, deadline, "connect")
        self._command("releaseStream", 2, None, url.stream_key, deadline=deadline)
        self._command("FCPublish", 3, None, url.stream_key, deadline=deadline)
        self._command("createStream", 4, None, deadline=deadline)
        values = self._await_result(4, deadline, "createStream")
        if len(values) < 4 or not isinstance(values[3], float):
            raise RtmpRefused(f"{self.shown}: createStream answered without a stream id")
        self.stream_id = int(values[3])
        self._command("publish", 5, None, url.stream_key, "live", csid=CS_SOURCE,
                      stream_id=self.stream_id, deadline=deadline)
        while not self.publishing:
            for message in self._receive(deadline, "publish"):
                self._on_status(message, connecting=True)

    def _await_result(self, transaction: int, deadline: float, step: str) -> list:
        while True:
            for message in self._receive(deadline, step):
                values = _command_values(message)
                if not values or len(values) < 2 or values[1] != transaction:
                    self._on_status(message, connecting=True)
                    continue
                if values[0] == "_result":
                    return values
                if values[0] == "_error":
                    raise RtmpRefused(_refusal(self.shown, step, values, self.url.stream_key))

    def _on_status(self, message: rc.Message, connecting: bool) -> None:
        """onStatus: Publish.Start starts publishing; an error status refuses or ends it."""
        values = _command_values(message)
        if not values or values[0] != "onStatus":
            return
        info = next((v for v in values[2:] if isinstance(v, dict)), {})
        code = str(info.get("code", ""))
        if code == "NetStream.Publish.Start":
            self.publishing = True
            return
        if info.get("level") != "error" and not code.endswith((".BadName", ".Failed", ".Rejected")):
            return
        text = _refusal(self.shown, "publish", values, self.url.stream_key)
        if connecting:
            raise RtmpRefused(text)
        self._lose(text)

    def _command(self, name: str, transaction: int, *args, csid: int = CS_SYSTEM,
                 stream_id: int = 0, deadline: float) -> None:
        self._send(csid, rc.COMMAND_AMF0, 0, stream_id, amf0.encode(name, transaction, *args),
                   deadline)

    def _receive(self, deadline: float, step: str) -> list[rc.Message]:
        """The messages the next bytes from the ingest complete (waiting until deadline);
        control messages are answered here and not returned."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise IngestSilent(f"{self.shown} completed the RTMP handshake but did not answer "
                               f"{step} in time")
        self._sock.settimeout(left)
        try:
            data = self._sock.recv(65536)
        except TimeoutError:
            raise IngestSilent(f"{self.shown} completed the RTMP handshake but did not answer "
                               f"{step} in time") from None
        except OSError as exc:
            raise ConnectionError(f"{self.shown} closed the connection during {step}: "
                                  f"{exc.strerror or exc}") from None
        if not data:
            raise RtmpRefused(f"{self.shown} closed the connection during {step}"
                              + (" (the ingest refused the stream key?)" if step == "publish" else
                                 f" (is the application '{self.url.app}' right?)" if step == "connect"
                                 else ""))
        return self._take(data, deadline)

    def _take(self, data: bytes, deadline: float) -> list[rc.Message]:
        self._received += len(data)
        try:
            messages = self._reader.feed(data)
        except rc.ChunkError as exc:
            raise ConnectionError(f"{self.shown} sent an invalid RTMP chunk stream: {exc}") from None
        rest = []
        for message in messages:
            if not self._on_control(message, deadline):
                rest.append(message)
        if self._window and self._received - self._acked >= self._window:
            self._acked = self._received
            self._send(CS_NETWORK, rc.ACKNOWLEDGEMENT, 0, 0,
                       struct.pack(">I", self._received & 0xFFFFFFFF), deadline)
        return rest

    def _on_control(self, message: rc.Message, deadline: float) -> bool:
        kind = message.type_id
        if kind == rc.WINDOW_ACK_SIZE and len(message.payload) >= 4:
            self._window = struct.unpack_from(">I", message.payload)[0]
        elif kind == rc.USER_CONTROL and len(message.payload) >= 6:
            event = struct.unpack_from(">H", message.payload)[0]
            if event == PING_REQUEST:
                self._send(CS_NETWORK, rc.USER_CONTROL, 0, 0,
                           struct.pack(">H", PING_RESPONSE) + message.payload[2:6], deadline)
        elif kind not in (rc.SET_CHUNK_SIZE, rc.ACKNOWLEDGEMENT, rc.SET_PEER_BANDWIDTH, rc.ABORT):
            return False
        return True

    # --- sending --------------------------------------------------------------------------
    def _send(self, csid: int, type_id: int, timestamp: int, stream_id: int, payload: bytes,
              deadline: float | None = None) -> None:
        data = rc.encode_message(csid, type_id, timestamp, stream_id, payload, OUT_CHUNK_SIZE)
        if deadline is None:
            timeout = self.write_timeout_s + SEND_TIMEOUT_MARGIN_S
        else:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise IngestSilent(f"{self.shown} stopped reading while connecting")
        self._sock.settimeout(timeout)
        try:
            self._sock.sendall(data)
        except TimeoutError:
            if deadline is not None:
                raise IngestSilent(f"{self.shown} stopped reading while connecting") from None
            self._lose(f"write to {self.shown} blocked for {timeout:.1f} s")
        except OSError as exc:
            self._lose(f"connection to {self.shown} lost: {exc.strerror or exc}")
        self.bytes_sent += len(data)

    def _lose(self, why: str) -> None:
        self._lost = redact(why)
        raise RtmpConnectionLost(self._lost)

    # --- file protocol used by PyAV -------------------------------------------------------
    def write(self, data) -> int:
        if self._closed:
            raise ValueError("write to a closed RtmpSink")
        if self._lost is not None:
            raise RtmpConnectionLost(self._lost)
        n = len(data)
        self.bytes_written += n
        self._poll_incoming()
        for tag in self._splitter.feed(bytes(data)):
            csid = _FLV_TYPES.get(tag.type_id)
            if csid is None:
                continue
            body = tag.body
            if tag.type_id == rc.DATA_AMF0 and body.startswith(amf0.encode("onMetaData")):
                body = _SET_DATA_FRAME + body
            self._send(csid, tag.type_id, tag.timestamp, self.stream_id, body)
        return n

    def _poll_incoming(self) -> None:
        """Read what the ingest sent meanwhile (acknowledgements, pings, status) without
        waiting: the muxer's thread is the only one that touches the socket."""
        sock = self._sock
        pending = getattr(sock, "pending", None)
        if not (pending and pending()) and not self._poller.poll(0):
            return
        sock.settimeout(0)
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except ssl.SSLWantReadError:    # a partial TLS record: the rest comes with a later write
            return
        except OSError as exc:
            self._lose(f"connection to {self.shown} lost: {exc.strerror or exc}")
        if not data:
            self._lose(f"{self.shown} closed the connection")
        for message in self._take(data, None):
            self._on_status(message, connecting=False)

    def flush(self) -> None:
        if self._lost is not None:
            raise RtmpConnectionLost(self._lost)

    def abort(self) -> None:
        """Unblock a send or receive stuck on this connection (any thread): it fails at once."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        """End the stream (FCUnpublish, deleteStream) if still connected, and close. Idempotent;
        waits at most CLOSE_TIMEOUT_S on an ingest that stopped reading."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            if self._lost is None and self.publishing:
                deadline = time.monotonic() + min(CLOSE_TIMEOUT_S, self.write_timeout_s)
                self._command("FCUnpublish", 6, None, self.url.stream_key, deadline=deadline)
                self._command("deleteStream", 7, None, self.stream_id, deadline=deadline)
        except (ConnectionError, OSError):
            pass
        finally:
            self._sock.close()


    # --- measurements ---------------------------------------------------------------------
    def tcp_info(self) -> TcpInfo:
        """TCP_INFO of this session's socket (OSError once it is closed)."""
        return read_tcp_info_from_socket(self._sock)

    def limit_send_buffer(self, notsent_lowat: int) -> None:
        set_send_limits(self._sock, notsent_lowat=notsent_lowat)


def open_rtmp(url: str, shown: str, *, connect_timeout_s: float, write_timeout_s: float,
              on_connected=None) -> RtmpSink:
    """Connect and start publishing; a ready RtmpSink. Raises ValueError for a URL without
    application or key, IngestAbsent / IngestSilent / RtmpRefused / ConnectionError.
    on_connected(abort) is called once the handshake is done, with what aborts the session
    (so another thread can end a connect that overstays)."""
    parsed = parse_rtmp_url(url)
    deadline = time.monotonic() + connect_timeout_s
    sock = connect_and_handshake(parsed.host, parsed.port, parsed.tls, deadline, shown)
    sink = RtmpSink(sock, parsed, shown, write_timeout_s)
    if on_connected is not None:
        on_connected(sink.abort)
    try:
        sink.publish(deadline)
    except BaseException:
        sock.close()
        raise
    log.info("RTMP publishing to %s (stream %d)", shown, sink.stream_id)
    return sink


def _command_values(message: rc.Message) -> list | None:
    if message.type_id == rc.COMMAND_AMF0:
        payload = message.payload
    elif message.type_id == rc.COMMAND_AMF3 and message.payload:
        payload = message.payload[1:]
    else:
        return None
    try:
        return amf0.decode(payload)
    except (amf0.Amf0Error, UnicodeDecodeError):
        return None


def _refusal(shown: str, step: str, values: list, key: str) -> str:
    """A refusal, said plainly; the ingest's own words follow, masked (they may quote the key)."""
    info = next((v for v in values[2:] if isinstance(v, dict)), {})
    code = str(info.get("code", "")) or "no code"
    said = str(info.get("description", "")).strip()
    if step == "connect":
        what = "the ingest refused the connection (application or credentials)"
    elif step == "publish":
        what = "the ingest refused the stream key"
    else:
        what = f"the ingest refused {step}"
    text = f"{shown}: {what} ({code}{': ' + said if said else ''})"
    return redact(text.replace(key, MASK) if key else text)
