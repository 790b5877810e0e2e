"""YouTube live chat through the Data API v3 (liveChatMessages.list polling).

Polls at the pollingIntervalMillis each response asks for, follows nextPageToken, maps super
chats/stickers to paid_amount and authorDetails to moderator/member. Errors (403 quotaExceeded,
5xx, network) back off; the API key (query `key=`) or OAuth bearer token comes from the
environment and is registered with redact() so no log line carries it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import aiohttp

from broadcaster.backoff import Backoff
from broadcaster.chat.message import ChatMessage
from broadcaster.chat.source import Emit, run_with_reconnect, sleep_or_stop
from broadcaster.redact import register_secret

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.googleapis.com/youtube/v3"


class YouTubeApiError(Exception):
    """An error answer from the API: HTTP status plus the API's reason (e.g. quotaExceeded)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"HTTP {status} {reason}: {message}")
        self.status, self.reason = status, reason


def item_to_message(item: dict, now: float, platform: str = "youtube") -> ChatMessage | None:
    """Map one liveChatMessage resource to a ChatMessage; None for events without text."""
    snippet = item.get("snippet") or {}
    author = item.get("authorDetails") or {}
    kind = snippet.get("type", "")
    paid, currency = 0.0, ""
    if kind == "textMessageEvent":
        text = (snippet.get("textMessageDetails") or {}).get("messageText") \
            or snippet.get("displayMessage", "")
    elif kind == "superChatEvent":
        details = snippet.get("superChatDetails") or {}
        text = details.get("userComment") or snippet.get("displayMessage", "")
        paid, currency = int(details.get("amountMicros", 0)) / 1e6, details.get("currency", "")
    elif kind == "superStickerEvent":
        details = snippet.get("superStickerDetails") or {}
        meta = details.get("superStickerMetadata") or {}
        text = meta.get("altText") or snippet.get("displayMessage", "")
        paid, currency = int(details.get("amountMicros", 0)) / 1e6, details.get("currency", "")
    elif kind == "memberMilestoneChatEvent":
        text = (snippet.get("memberMilestoneChatDetails") or {}).get("userComment", "")
    else:
        return None
    if not text:
        return None
    kwargs = {"id": item["id"]} if item.get("id") else {}
    return ChatMessage(platform=platform, user=author.get("displayName") or "viewer", text=text,
                       time=now,
                       moderator=bool(author.get("isChatModerator") or author.get("isChatOwner")),
                       member=bool(author.get("isChatSponsor")),
                       paid_amount=paid, currency=currency, **kwargs)


class YouTubeChatSource:
    """Poll one live chat. Settings under `chat.sources[]` with `type: youtube`."""

    def __init__(self, *, live_chat_id: str | None = None, video_id: str | None = None,
                 base_url: str = DEFAULT_BASE_URL, api_key_env: str = "YOUTUBE_API_KEY",
                 token_env: str = "YOUTUBE_OAUTH_TOKEN", min_interval_s: float = 1.0,
                 max_results: int = 200, skip_backlog: bool = True,
                 request_timeout_s: float = 10.0, backoff: Backoff | None = None,
                 platform: str = "youtube") -> None:
        if not live_chat_id and not video_id:
            raise ValueError("chat youtube source: set 'live_chat_id' or 'video_id'")
        self.live_chat_id, self.video_id = live_chat_id, video_id
        self.base_url = base_url.rstrip("/")
        self._key = os.environ.get(api_key_env, "").strip() if api_key_env else ""
        self._token = os.environ.get(token_env, "").strip() if token_env else ""
        if not self._key and not self._token:
            raise ValueError(f"chat youtube source: set {api_key_env} (API key) or {token_env} "
                             f"(OAuth token) in the environment")
        register_secret(self._key)
        register_secret(self._token)
        self.min_interval_s, self.max_results = min_interval_s, max_results
        self.skip_backlog = skip_backlog
        self.request_timeout_s = request_timeout_s
        self.backoff = backoff or Backoff(max_s=300.0)
        self.platform = platform
        self.name = f"youtube:{live_chat_id or video_id}"
        self.counters: dict[str, int] = {"messages": 0, "polls": 0}
        self._page_token: str | None = None
        self._primed = not skip_backlog

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        await run_with_reconnect(self.name, lambda: self._session(emit, stop), stop,
                                 self.backoff, log, self.counters)

    async def _get(self, http: aiohttp.ClientSession, path: str, params: dict) -> dict:
        params = {k: v for k, v in params.items() if v is not None}
        headers = {}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        else:
            params["key"] = self._key
        async with http.get(f"{self.base_url}/{path}", params=params, headers=headers) as resp:
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                body = None
            if resp.status != 200 or not isinstance(body, dict):
                err = (body or {}).get("error", {}) if isinstance(body, dict) else {}
                errors = err.get("errors") or [{}]
                reason = errors[0].get("reason", "") if isinstance(errors[0], dict) else ""
                raise YouTubeApiError(resp.status, reason or "error",
                                      str(err.get("message", "unexpected answer"))[:200])
            return body

    async def _resolve_chat_id(self, http: aiohttp.ClientSession) -> str:
        body = await self._get(http, "videos", {"part": "liveStreamingDetails",
                                                "id": self.video_id})
        for item in body.get("items", []):
            chat_id = (item.get("liveStreamingDetails") or {}).get("activeLiveChatId")
            if chat_id:
                return chat_id
        raise YouTubeApiError(404, "noActiveLiveChat",
                              f"video {self.video_id} has no active live chat")

    async def _session(self, emit: Emit, stop: asyncio.Event) -> None:
        timeout = aiohttp.ClientTimeout(total=self.request_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            if not self.live_chat_id:
                self.live_chat_id = await self._resolve_chat_id(http)
                log.info("%s: live chat id resolved", self.name)
            while not stop.is_set():
                body = await self._get(http, "liveChat/messages", {
                    "liveChatId": self.live_chat_id, "part": "snippet,authorDetails",
                    "maxResults": str(self.max_results), "pageToken": self._page_token})
                self.counters["polls"] += 1
                self.backoff.reset()
                self._page_token = body.get("nextPageToken") or self._page_token
                now = time.monotonic()
                if self._primed:
                    for item in body.get("items", []):
                        msg = item_to_message(item, now, self.platform)
                        if msg is not None:
                            self.counters["messages"] += 1
                            emit(msg)
                self._primed = True
                if body.get("offlineAt"):
                    log.info("%s: the broadcast went offline", self.name)
                interval = max(self.min_interval_s,
                               float(body.get("pollingIntervalMillis", 0) or 0) / 1000.0)
                if await sleep_or_stop(stop, interval):
                    return
