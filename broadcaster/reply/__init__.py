"""Responders: turn a selected chat message into the anchor's reply, as streamed text deltas.

Every responder has `respond(msg) -> AsyncIterator[str]` and never raises into the caller
(except cancellation); the core feeds the deltas to the TTS sentence splitter.
"""

from broadcaster.reply.factory import make_responder

__all__ = ["make_responder"]
