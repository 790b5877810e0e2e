"""Responders: turn a selected chat message into the anchor's reply, as streamed text deltas.

Every responder is a `Responder` (responder.py); the conversation feeds its deltas to the
TTS sentence splitter.
"""

from broadcaster.reply.factory import make_responder

__all__ = ["make_responder"]
