"""A local aiohttp server that replays the YouTube Data API v3 liveChatMessages.list shape.

`script` is a list of steps served in order (the last one repeats): either a list of items
(answered 200 with nextPageToken / pollingIntervalMillis) or (status, reason) for an error in
Google's JSON error format. Every request's query, headers and arrival time are recorded.
"""

from __future__ import annotations

import time

from aiohttp import web

from tests.support.aio import AppServer


def text_item(i, user, text, moderator=False, sponsor=False, owner=False):
    return {"kind": "youtube#liveChatMessage", "etag": f"etag{i}", "id": f"msg{i}",
            "snippet": {"type": "textMessageEvent", "liveChatId": "CHAT1",
                        "authorChannelId": f"UC{user}", "publishedAt": "2026-11-25T10:00:00Z",
                        "hasDisplayContent": True, "displayMessage": text,
                        "textMessageDetails": {"messageText": text}},
            "authorDetails": {"channelId": f"UC{user}", "channelUrl": "http://youtube.com",
                              "displayName": user, "profileImageUrl": "http://x/p.jpg",
                              "isVerified": False, "isChatOwner": owner,
                              "isChatSponsor": sponsor, "isChatModerator": moderator}}


def superchat_item(i, user, comment, micros, currency):
    item = text_item(i, user, comment)
    item["snippet"] = {"type": "superChatEvent", "liveChatId": "CHAT1",
                       "authorChannelId": f"UC{user}", "publishedAt": "2026-11-25T10:00:00Z",
                       "hasDisplayContent": True,
                       "displayMessage": f"$ from {user}: \"{comment}\"",
                       "superChatDetails": {"amountMicros": str(micros), "currency": currency,
                                            "amountDisplayString": f"{micros / 1e6:.2f}",
                                            "userComment": comment, "tier": 2}}
    return item


def error_body(status, reason):
    return {"error": {"code": status, "message": f"The request failed: {reason}.",
                      "errors": [{"message": f"The request failed: {reason}.",
                                  "domain": "youtube.quota" if reason == "quotaExceeded"
                                  else "global", "reason": reason}]}}


class FakeYouTubeApi(AppServer):
    prefix = "/youtube/v3"

    def __init__(self, script, interval_ms=50, video_chat_id="CHAT1") -> None:
        super().__init__()
        self.script, self.interval_ms, self.video_chat_id = list(script), interval_ms, \
            video_chat_id
        self.requests: list[dict] = []
        self.step = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/youtube/v3/liveChat/messages", self._messages)
        app.router.add_get("/youtube/v3/videos", self._videos)

    def _record(self, request):
        self.requests.append({"path": request.path, "query": dict(request.query),
                              "auth": request.headers.get("Authorization"),
                              "t": time.monotonic()})

    async def _videos(self, request):
        self._record(request)
        return web.json_response({"kind": "youtube#videoListResponse", "items": [
            {"kind": "youtube#video", "id": request.query.get("id"),
             "liveStreamingDetails": {"actualStartTime": "2026-11-25T09:00:00Z",
                                      "activeLiveChatId": self.video_chat_id}}]})

    async def _messages(self, request):
        self._record(request)
        step = self.script[min(self.step, len(self.script) - 1)]
        self.step += 1
        if isinstance(step, tuple):
            status, reason = step
            return web.json_response(error_body(status, reason), status=status)
        return web.json_response({
            "kind": "youtube#liveChatMessageListResponse", "etag": f"page{self.step}",
            "nextPageToken": f"token{self.step}", "pollingIntervalMillis": self.interval_ms,
            "pageInfo": {"totalResults": len(step), "resultsPerPage": len(step)},
            "items": step})
