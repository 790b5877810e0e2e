"""A small asyncio IRC server that behaves like Twitch chat where ngircd cannot: it ACKs the
twitch.tv capabilities, sends PRIVMSGs with IRCv3 tags, PINGs, can drop the connection or send
RECONNECT, and records every line the client sent (to check login and PONG)."""

from __future__ import annotations

import asyncio


class FakeTwitchServer:
    def __init__(self) -> None:
        self.received: list[str] = []
        self.connections = 0
        self.clients: list[asyncio.StreamWriter] = []
        self.joined = asyncio.Event()
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        for w in self.clients:
            w.close()
        if self.server:
            self.server.close()
            await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.clients.append(writer)
        nick = "?"
        try:
            while True:
                raw = await reader.readline()
                if not raw:
                    break
                line = raw.decode().rstrip("\r\n")
                self.received.append(line)
                if line.startswith("CAP REQ"):
                    caps = line.split(":", 1)[1]
                    writer.write(f":tmi.twitch.tv CAP * ACK :{caps}\r\n".encode())
                elif line.startswith("NICK "):
                    nick = line[5:]
                    writer.write(f":tmi.twitch.tv 001 {nick} :Welcome, GLHF!\r\n".encode())
                elif line.startswith("JOIN "):
                    chan = line[5:]
                    writer.write(f":{nick}!{nick}@{nick}.tmi.twitch.tv JOIN {chan}\r\n".encode())
                    self.joined.set()
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if writer in self.clients:
                self.clients.remove(writer)
            writer.close()

    async def send(self, line: str) -> None:
        """Send a raw line to every connected client."""
        for w in list(self.clients):
            w.write((line + "\r\n").encode())
            await w.drain()

    async def drop_all(self) -> None:
        """Close every client connection abruptly (a network drop)."""
        self.joined.clear()
        for w in list(self.clients):
            w.transport.abort()
        self.clients.clear()
