"""The live mic through a remote asr-serve, with the same callbacks as the local MicPipeline.

The capture thread runs a local VadSegmenter only for the onset (barge-in must not wait for a
network round trip) and hands every frame to the Opus client (drop-oldest when the link
falls behind). The server runs its own VAD + ASR; its partial/final messages come back as
Transcript objects. Utterance ids and times are the server's (seconds since the current
connection started), not the local VAD's.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Callable

from broadcaster.asr.client import RemoteAsrClient
from broadcaster.asr.streaming import Transcript
from broadcaster.mic.vad import SpeechOnset, VadConfig, VadSegmenter

log = logging.getLogger(__name__)


def transcript_from_message(msg: dict) -> Transcript | None:
    """A server 'partial'/'final' message as a Transcript (None for other messages)."""
    if msg.get("type") not in ("partial", "final"):
        return None
    return Transcript(msg["type"], int(msg["utt"]), str(msg["text"]), float(msg["start"]), float(msg["end"]),
                      float(msg.get("latency_ms", 0.0)) / 1000.0, float(msg.get("decode_ms", 0.0)) / 1000.0)


class RemoteMicPipeline:
    """source -> local VAD (onset) + Opus uplink -> asr-serve -> on_transcript.

    loop: a running asyncio loop in another thread (the control plane's); the client lives
    there. on_onset runs on the capture thread, on_transcript on the loop thread.
    """

    def __init__(self, source, url: str, token: str, on_transcript: Callable[[Transcript], None], *,
                 loop: asyncio.AbstractEventLoop, on_onset: Callable[[SpeechOnset], None] | None = None,
                 vad_config: VadConfig = VadConfig(), queue_frames: int = 25) -> None:
        self.source, self.loop = source, loop
        self.on_transcript = on_transcript
        self.segmenter = VadSegmenter(vad_config, on_onset=on_onset)
        self.client = RemoteAsrClient(url, token, self._on_message, queue_frames=queue_frames,
                                      drop_when_full=True)
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mic-capture-remote", daemon=True)

    def _on_message(self, msg: dict) -> None:
        tr = transcript_from_message(msg)
        if tr is not None:
            self.on_transcript(tr)
        elif msg.get("type") == "error":
            log.error("asr server error %s: %s", msg.get("code"), msg.get("message"))

    def start(self) -> "RemoteMicPipeline":
        asyncio.run_coroutine_threadsafe(self.client.start(), self.loop).result(5)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for frame in self.source.frames():
                if self._stop.is_set() or self.client.error is not None:
                    break
                self.segmenter.process(frame)  # only for on_onset; the server segments for ASR
                self.client.submit_threadsafe(frame)
        except BaseException as exc:
            self.error = exc
            log.error("remote mic pipeline stopped: %s", exc)

    def join(self, timeout: float = 30.0) -> None:
        """Wait for a finite source (a file) to end, then for the server's last transcripts."""
        self._thread.join(timeout)
        asyncio.run_coroutine_threadsafe(self.client.finish(timeout), self.loop).result(timeout + 5)

    def stop(self) -> None:
        self._stop.set()
        self.source.close()
        self._thread.join(5)
        asyncio.run_coroutine_threadsafe(self.client.close(), self.loop).result(10)
