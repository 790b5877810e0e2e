"""A TLS-terminating TCP proxy on loopback (what an rtmps:// ingest's front end is): TLS with a
self-signed certificate for localhost/127.0.0.1 made by the openssl command, forwarding the
plain bytes to a backend port (nginx-rtmp). Trust it with SSL_CERT_FILE=proxy.cert."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

from tests.support.servers.loopback import LoopbackListener


def make_self_signed(workdir: Path) -> tuple[Path, Path]:
    """(certificate, key) for CN=localhost, SAN localhost and 127.0.0.1, valid one day."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the openssl command is needed to make a test certificate")
    cert, key = workdir / "proxy.crt", workdir / "proxy.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


class TlsProxy:
    def __init__(self, workdir: Path, backend_port: int) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.cert, key = make_self_signed(workdir)
        self.backend_port = backend_port
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(self.cert, key)
        self.sessions = 0          # TLS handshakes completed
        self._socks: list[socket.socket] = []
        self._listener = LoopbackListener(
            lambda conn: threading.Thread(target=self._serve, args=(conn,), daemon=True).start(),
            "tls-proxy")
        self.port = self._listener.port

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            tls = self._context.wrap_socket(conn, server_side=True)
            tls.settimeout(None)
            backend = socket.create_connection(("127.0.0.1", self.backend_port))
        except (OSError, ssl.SSLError):
            conn.close()
            return
        self.sessions += 1
        self._socks += [tls, backend]
        threading.Thread(target=_pump, args=(backend, tls), daemon=True).start()
        _pump(tls, backend)

    def close(self) -> None:
        self._listener.close()
        for sock in self._socks:
            try:
                sock.close()
            except OSError:
                pass

    def __enter__(self) -> TlsProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
