"""Viewer chat: sources (Twitch IRC, YouTube, HTTP/WebSocket, stdin), moderation and selection."""

from broadcaster.chat.message import ChatMessage

__all__ = ["ChatMessage"]
