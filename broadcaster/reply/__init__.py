"""Responders: turn a selected chat message (or the host's words) into the anchor's reply,
as streamed text deltas.

Every responder is a `Responder` (responder.py); the conversation streams its deltas into
the speech stage, which splits them into sentences.
"""

from broadcaster.reply.factory import make_responder

__all__ = ["make_responder"]
