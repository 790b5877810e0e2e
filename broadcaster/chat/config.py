"""Build chat sources and the selection policy from the `chat:` config mapping.

    chat:
      http: true                  # POST /chat and /chat/ws on the control endpoint
      backoff: {first_s: 2, factor: 1.5, cap_s: 300, jitter: 0.2}
      selection: {...}            # SelectionConfig fields
      sources:
        - {type: twitch, channel: mychannel, nick: null, token_env: TWITCH_OAUTH_TOKEN,
           host: irc.chat.twitch.tv, port: 6697, tls: true}
        - {type: youtube, live_chat_id: null, video_id: abc, api_key_env: YOUTUBE_API_KEY,
           token_env: YOUTUBE_OAUTH_TOKEN, base_url: https://www.googleapis.com/youtube/v3}
        - {type: stdin, user: host}
        - {type: bilibili, room_id: 123456, uid: 0, key_env: BILIBILI_KEY, buvid: "",
           url: wss://broadcastlv.chat.bilibili.com/sub, heartbeat_s: 30}
Errors name the key at fault (chat.sources[1].channel ...).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from broadcaster.backoff import Backoff
from broadcaster.chat.bilibili import BilibiliSource
from broadcaster.chat.irc import TwitchIrcSource
from broadcaster.chat.selection import SelectionConfig
from broadcaster.chat.source import ChatSource
from broadcaster.chat.stdin import StdinSource
from broadcaster.chat.youtube import YouTubeChatSource
from broadcaster.schema import is_number

SOURCE_TYPES = {"twitch": TwitchIrcSource, "youtube": YouTubeChatSource, "stdin": StdinSource,
                "bilibili": BilibiliSource}
_NOT_FROM_CONFIG = {"backoff", "fd", "self"}


@dataclass
class ChatSettings:
    http: bool = True
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    sources: list[ChatSource] = field(default_factory=list)


def _backoff_factory(data: object, where: str):
    data = dict(data or {}) if isinstance(data, dict) or data is None else None
    if data is None:
        raise ValueError(f"{where}: expected a mapping")
    names = {"first_s": "initial_s", "factor": "factor", "cap_s": "max_s", "jitter": "jitter"}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    kwargs = {names[k]: v for k, v in data.items()}
    try:
        Backoff(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    return lambda: Backoff(**kwargs)


def build_source(entry: object, where: str, backoff=None) -> ChatSource:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping with a 'type'")
    entry = dict(entry)
    kind = entry.pop("type", None)
    cls = SOURCE_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"{where}.type: {kind!r} is not one of {sorted(SOURCE_TYPES)}")
    params = inspect.signature(cls.__init__).parameters
    allowed = set(params) - _NOT_FROM_CONFIG
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} for type {kind}; "
                         f"known: {sorted(allowed)}")
    missing = sorted(name for name, param in params.items()
                     if name in allowed and param.default is inspect.Parameter.empty
                     and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
                     and name not in entry)
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing} for type {kind}")
    settings = dict(entry)
    if "backoff" in params and backoff is not None:
        entry["backoff"] = backoff()
    try:
        source = cls(**entry)
    except TypeError as exc:
        raise ValueError(f"{where}: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    # what the source's own checks let through (NaN passes every comparison)
    for name, value in settings.items():
        _check_value(value, params[name], f"{where}.{name}")
    return source


def _check_value(value: object, param: inspect.Parameter, where: str) -> None:
    """A source's number settings (ports, seconds, counts, ids) are finite and positive (or
    zero where zero is the default, e.g. an anonymous uid), its flags true or false; NaN and
    infinity pass every range comparison, so they are refused here."""
    annotation = param.annotation
    if annotation == "bool" and not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    if annotation not in ("int", "float"):
        return
    zero_ok = param.default == 0 and not isinstance(param.default, bool)
    if not is_number(value) or value < 0 or (value == 0 and not zero_ok):
        raise ValueError(f"{where}: expected a {'non-negative' if zero_ok else 'positive'} number, "
                         f"got {value!r}")
    if annotation == "int" and not float(value).is_integer():
        raise ValueError(f"{where}: expected a whole number, got {value!r}")
    if where.endswith(".port") and value > 65535:
        raise ValueError(f"{where}: expected a port from 1 to 65535, got {value!r}")


def chat_settings_from_dict(data: dict | None, where: str = "chat") -> ChatSettings:
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping (http, backoff, selection, sources)")
    data = dict(data or {})
    unknown = sorted(set(data) - {"http", "backoff", "selection", "sources"})
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; "
                         f"known: backoff, http, selection, sources")
    http = data.get("http", True)
    if not isinstance(http, bool):
        raise ValueError(f"{where}.http: expected true or false, got {http!r}")
    backoff = _backoff_factory(data.get("backoff"), f"{where}.backoff")
    entries = data.get("sources") or []
    if not isinstance(entries, list):
        raise ValueError(f"{where}.sources: expected a list")
    sources = [build_source(e, f"{where}.sources[{i}]", backoff) for i, e in enumerate(entries)]
    return ChatSettings(http=http,
                        selection=SelectionConfig.from_dict(data.get("selection"),
                                                            f"{where}.selection"),
                        sources=sources)
