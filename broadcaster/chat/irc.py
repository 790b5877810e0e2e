"""Twitch chat over IRC (IRCv3 tags), read-only: anonymous justinfan login or an OAuth token.

The parser is pure (parse_irc_line, privmsg_to_message); TwitchIrcSource does the socket part:
CAP REQ twitch.tv/tags twitch.tv/commands, PASS/NICK/USER, JOIN after 001, PING -> PONG, a
keepalive PING when the link is quiet, reconnect with backoff on drop or RECONNECT.
Any RFC 1459 server works (tests use ngircd); tags are simply absent there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl
import time
from dataclasses import dataclass, field

from broadcaster.backoff import Backoff
from broadcaster.chat.message import ChatMessage
from broadcaster.chat.source import Emit, read_with_timeout, run_with_reconnect
from broadcaster.redact import register_secret

log = logging.getLogger(__name__)

_TAG_UNESCAPE = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


@dataclass
class IrcLine:
    command: str
    params: list[str] = field(default_factory=list)
    prefix: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def nick(self) -> str:
        return self.prefix.split("!", 1)[0]


def _unescape_tag(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            out.append(_TAG_UNESCAPE.get(value[i + 1], value[i + 1]))
            i += 2
        elif ch == "\\":
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_irc_line(line: str) -> IrcLine:
    """Parse one IRC line (without CRLF), IRCv3 message tags included. Raises ValueError."""
    rest = line.rstrip("\r\n")
    tags: dict[str, str] = {}
    if rest.startswith("@"):
        raw, _, rest = rest[1:].partition(" ")
        for item in raw.split(";"):
            if item:
                key, _, value = item.partition("=")
                tags[key] = _unescape_tag(value)
        rest = rest.lstrip(" ")
    prefix = ""
    if rest.startswith(":"):
        prefix, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    trailing = None
    if " :" in rest:
        rest, trailing = rest.split(" :", 1)
    elif rest.startswith(":"):
        rest, trailing = "", rest[1:]
    parts = rest.split()
    if not parts:
        raise ValueError(f"IRC line without a command: {line[:80]!r}")
    params = parts[1:] + ([trailing] if trailing is not None else [])
    return IrcLine(command=parts[0].upper(), params=params, prefix=prefix, tags=tags)


def _badges(tags: dict[str, str]) -> set[str]:
    return {b.split("/", 1)[0] for b in tags.get("badges", "").split(",") if b}


def privmsg_to_message(line: IrcLine, now: float, platform: str = "twitch") -> ChatMessage:
    """Turn a PRIVMSG (tags or not) into a ChatMessage; /me ACTION text is unwrapped."""
    text = line.params[-1] if line.params else ""
    if text.startswith("\x01ACTION ") and text.endswith("\x01"):
        text = text[8:-1]
    tags = line.tags
    badges = _badges(tags)
    user = tags.get("display-name") or line.nick or "viewer"
    try:
        bits = int(tags.get("bits", "0") or 0)
    except ValueError:
        bits = 0
    kwargs = {}
    if tags.get("id"):
        kwargs["id"] = tags["id"]
    return ChatMessage(platform=platform, user=user, text=text, time=now,
                       moderator=tags.get("mod") == "1" or bool(badges & {"moderator",
                                                                           "broadcaster"}),
                       member=tags.get("subscriber") == "1" or bool(badges & {"subscriber",
                                                                             "founder"}),
                       paid_amount=float(bits), currency="BITS" if bits else "", **kwargs)


class TwitchIrcSource:
    """Read one channel's chat. Settings under `chat.sources[]` with `type: twitch`."""

    def __init__(self, channel: str, *, host: str = "irc.chat.twitch.tv", port: int = 6697,
                 tls: bool = True, nick: str | None = None,
                 token_env: str = "TWITCH_OAUTH_TOKEN", idle_timeout_s: float = 360.0,
                 pong_timeout_s: float = 15.0, connect_timeout_s: float = 10.0,
                 backoff: Backoff | None = None, platform: str = "twitch") -> None:
        channel = channel.strip().lstrip("#").lower()
        if not channel:
            raise ValueError("chat twitch source: 'channel' must be a non-empty channel name")
        self.channel, self.host, self.port, self.tls = channel, host, port, tls
        token = os.environ.get(token_env, "").strip() if token_env else ""
        if token:
            if not token.startswith("oauth:"):
                token = "oauth:" + token
            register_secret(token)
            register_secret(token[6:])
            if not nick:
                raise ValueError(f"chat twitch source: 'nick' is required when {token_env} "
                                 f"is set (the login that owns the token)")
        self._token = token
        self.nick = (nick or f"justinfan{random.randint(10000, 99999)}").lower()
        self.idle_timeout_s, self.pong_timeout_s = idle_timeout_s, pong_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.backoff = backoff or Backoff(max_s=300.0)
        self.platform = platform
        self.name = f"twitch:#{channel}"
        self.counters: dict[str, int] = {"messages": 0}
        self.joined = asyncio.Event()  # set while joined (tests wait on it)

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        await run_with_reconnect(self.name, lambda: self._session(emit, stop), stop,
                                 self.backoff, log, self.counters)

    async def _session(self, emit: Emit, stop: asyncio.Event) -> None:
        context = ssl.create_default_context() if self.tls else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, ssl=context), self.connect_timeout_s)
        try:
            await self._login(writer)
            await self._read_loop(reader, writer, emit, stop)
        finally:
            self.joined.clear()
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 2)
            except (asyncio.TimeoutError, OSError, ssl.SSLError):
                pass

    async def _login(self, writer: asyncio.StreamWriter) -> None:
        lines = ["CAP REQ :twitch.tv/tags twitch.tv/commands"]
        if self._token:
            lines.append(f"PASS {self._token}")
        lines += [f"NICK {self.nick}", f"USER {self.nick} 0 * :{self.nick}"]
        writer.write("".join(line + "\r\n" for line in lines).encode())
        await writer.drain()
        log.info("%s: logging in to %s:%d as %s%s", self.name, self.host, self.port, self.nick,
                 " (token)" if self._token else " (anonymous)")

    async def _read_loop(self, reader, writer, emit: Emit, stop: asyncio.Event) -> None:
        waiting_pong = False
        lines = 0
        while not stop.is_set():
            lines += 1
            if lines % 32 == 0:
                # readline() does not suspend while the buffer holds lines: during a flood,
                # give the rest of the control loop (conversation, TTS, HTTP) its turn.
                await asyncio.sleep(0)
            timeout = self.pong_timeout_s if waiting_pong else self.idle_timeout_s
            try:
                raw = await read_with_timeout(reader.readline(), timeout)
            except asyncio.TimeoutError:
                if waiting_pong:
                    raise ConnectionError("no answer to keepalive PING")
                writer.write(b"PING :keepalive\r\n")
                await writer.drain()
                waiting_pong = True
                continue
            if not raw:
                raise ConnectionError("server closed the connection")
            waiting_pong = False
            try:
                line = parse_irc_line(raw.decode("utf-8", errors="replace"))
            except ValueError as exc:
                log.debug("%s: %s", self.name, exc)
                continue
            await self._handle(line, writer, emit, time.monotonic())

    async def _handle(self, line: IrcLine, writer, emit: Emit, now: float) -> None:
        cmd = line.command
        if cmd == "PING":
            writer.write(f"PONG :{line.params[-1] if line.params else ''}\r\n".encode())
            await writer.drain()
        elif cmd == "CAP" and len(line.params) >= 2 and line.params[1] in ("ACK", "NAK"):
            writer.write(b"CAP END\r\n")
            await writer.drain()
        elif cmd == "001":
            writer.write(f"JOIN #{self.channel}\r\n".encode())
            await writer.drain()
        elif cmd == "JOIN" and line.nick.lower() == self.nick:
            log.info("%s: joined", self.name)
            self.joined.set()
            self.backoff.reset()
        elif cmd == "PRIVMSG" and len(line.params) >= 2 and \
                line.params[0].lstrip("#").lower() == self.channel:
            self.counters["messages"] += 1
            emit(privmsg_to_message(line, now, self.platform))
        elif cmd == "RECONNECT":
            raise ConnectionError("server asked to RECONNECT")
        elif cmd == "NOTICE" and line.params and "authentication failed" in line.params[-1]:
            raise ConnectionError("login authentication failed (check the token and nick)")
        elif cmd in ("ERROR", "464", "465"):
            raise ConnectionError(f"server refused: {' '.join(line.params)[:200]}")
