"""Run a real ngircd on a free loopback port, in the foreground, from a temp dir."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager

from tests.support.ports import free_port, wait_port
from tests.support.processes import stop


@contextmanager
def ngircd_server():
    """Yield the port of a running ngircd; terminate it (by pid) and clean up afterwards."""
    binary = shutil.which("ngircd") or "/usr/sbin/ngircd"
    tmp = tempfile.mkdtemp(prefix="ngircd-")
    os.chmod(tmp, 0o777)  # ngircd drops root to nobody and writes its pid file here
    port = free_port()
    conf = os.path.join(tmp, "ngircd.conf")
    with open(conf, "w") as fh:
        fh.write(f"""[Global]
Name = irc.test.local
Info = broadcaster test server
AdminInfo1 = tests
AdminInfo2 = loopback
AdminEMail = tests@localhost
Listen = 127.0.0.1
Ports = {port}
PidFile = {tmp}/ngircd.pid
MotdPhrase = test
[Limits]
MaxConnectionsIP = 0
MaxNickLength = 20
[Options]
PAM = no
Ident = no
DNS = no
""")
    log = open(os.path.join(tmp, "ngircd.log"), "w")
    proc = subprocess.Popen([binary, "-n", "-f", conf], stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_port(port, proc=proc)
        except AssertionError:
            log.flush()
            raise RuntimeError("ngircd did not start: "
                               + open(os.path.join(tmp, "ngircd.log")).read()) from None
        yield port, proc
    finally:
        stop(proc, timeout=5)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


class IrcViewer:
    """A second, plain IRC client that posts as a viewer (asyncio)."""

    def __init__(self, port: int, nick: str) -> None:
        self.port, self.nick = port, nick

    async def connect(self, channel: str) -> None:
        import asyncio
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(f"NICK {self.nick}\r\nUSER {self.nick} 0 * :{self.nick}\r\n".encode())
        await self._wait_for(" 001 ")
        self.writer.write(f"JOIN #{channel}\r\n".encode())
        await self._wait_for(" JOIN ")

    async def _wait_for(self, marker: str) -> None:
        import asyncio
        while True:
            line = (await asyncio.wait_for(self.reader.readline(), 5)).decode()
            if line.startswith("PING"):
                self.writer.write(("PONG" + line[4:]).encode())
            if marker in line:
                return

    async def say(self, channel: str, text: str) -> None:
        self.writer.write(f"PRIVMSG #{channel} :{text}\r\n".encode())
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.write(b"QUIT :bye\r\n")
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass
