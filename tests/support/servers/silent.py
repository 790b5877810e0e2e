"""TCP listeners on loopback that go silent: what a hung ingest, or a load balancer in front
of one, looks like to a client. SilentListener never sends a byte; with handshake=True it
first completes the RTMP handshake (S0/S1/S2, as nginx-rtmp does) and then never answers
`connect` or anything else; with answer_connect=True as well it answers `connect` with a
_result (as nginx-rtmp words it) and goes silent at createStream."""

from __future__ import annotations

import os
import socket
import threading

from broadcaster.transport.amf0 import decode, encode
from broadcaster.transport.rtmp_chunk import COMMAND_AMF0, ChunkReader, encode_message
from tests.support.servers.loopback import LoopbackListener

_HANDSHAKE = 1536


class SilentListener:
    """Accepts on 127.0.0.1:port and holds each connection open, reading and discarding."""

    def __init__(self, port: int = 0, handshake: bool = False, answer_connect: bool = False) -> None:
        """port 0: a free one; or the port of an ingest that was stopped, to stand in its place."""
        self.handshake = handshake or answer_connect
        self.answer_connect = answer_connect
        self.handshakes = 0          # RTMP handshakes completed (handshake=True)
        self.bytes_after_handshake = 0
        self._conns: list[socket.socket] = []
        self._listener = LoopbackListener(self._hold, "silent-listener", port)
        self.port = self._listener.port
        self._stop = self._listener.stopping

    @property
    def accepted(self) -> int:
        return self._listener.accepted

    def _hold(self, conn: socket.socket) -> None:
        self._conns.append(conn)
        if self.handshake:
            threading.Thread(target=self._handshake_then_listen, args=(conn,),
                             name="silent-rtmp", daemon=True).start()

    def _handshake_then_listen(self, conn: socket.socket) -> None:
        try:
            c0c1 = _recv_exactly(conn, 1 + _HANDSHAKE)
            s1 = bytes(8) + os.urandom(_HANDSHAKE - 8)
            conn.sendall(bytes([3]) + s1 + c0c1[1:])       # S0, S1, S2 (echoes C1)
            _recv_exactly(conn, _HANDSHAKE)                 # C2
            self.handshakes += 1
            reader = ChunkReader()
            while not self._stop.is_set():
                data = conn.recv(65536)                     # connect, and whatever follows
                if not data:
                    return
                self.bytes_after_handshake += len(data)
                if self.answer_connect:
                    for message in reader.feed(data):
                        if message.type_id == COMMAND_AMF0 and decode(message.payload)[0] == "connect":
                            conn.sendall(_connect_result())
        except OSError:
            return

    def close(self) -> None:
        self._listener.close()
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def __enter__(self) -> SilentListener:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _connect_result() -> bytes:
    result = encode("_result", 1, {"fmsVer": "FMS/3,0,1,123", "capabilities": 31},
                    {"level": "status", "code": "NetConnection.Connect.Success",
                     "description": "Connection succeeded.", "objectEncoding": 0})
    return encode_message(3, COMMAND_AMF0, 0, 0, result, 128)


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed during the handshake")
        data += chunk
    return bytes(data)
