"""`asr-serve`: VAD + streaming Whisper behind a WebSocket, fed Opus from the broadcaster.

Each connection gets its own Opus decoder, VAD segmenter and transcript planner; decoding
runs on one shared worker thread (the model uses the CPU cores already), so a slow client
only delays its own transcripts. Any bad input closes that connection with a JSON error and
a close code; the server and its other clients carry on. The token is never logged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import logging
import signal

import numpy as np

from broadcaster.asr import protocol as P
from broadcaster.asr.streaming import StreamingTranscriber, Transcript, turn_end_gate
from broadcaster.asr.turn_end import TurnEndConfig
from broadcaster.mic.vad import SpeechOnset, VadConfig, VadSegmenter

log = logging.getLogger(__name__)

MAX_GAP_FRAMES = 10  # lost frames up to 200 ms are concealed (Opus PLC)
LONG_GAP_SILENCE_FRAMES = 50  # longer gaps: 1 s of silence (closes an utterance), rest skipped
GAP_CREDIT_CAP = 2 * LONG_GAP_SILENCE_FRAMES


class GapFill:
    """How many frames to make up for a gap in the sequence, paid from a credit that each
    received frame refills by one (up to GAP_CREDIT_CAP; a new connection starts with 1 s).

    A real outage gets its concealment or its second of silence; a client that jumps the
    sequence on every packet gets at most one made-up frame per frame it sends, so it cannot
    keep the shared server busy with work it never paid for in bandwidth.
    """

    def __init__(self) -> None:
        self.credit = LONG_GAP_SILENCE_FRAMES

    def received(self) -> None:
        self.credit = min(GAP_CREDIT_CAP, self.credit + 1)

    def frames_for(self, gap: int) -> tuple[int, bool]:
        """(frames to make up, whether they are Opus concealment rather than silence)."""
        wanted = gap if gap <= MAX_GAP_FRAMES else min(gap, LONG_GAP_SILENCE_FRAMES)
        granted = min(wanted, self.credit)
        self.credit -= granted
        return granted, gap <= MAX_GAP_FRAMES


def transcript_message(tr: Transcript) -> str:
    return json.dumps({"type": tr.kind, "utt": tr.utt_id, "text": tr.text, "start": round(tr.start, 3),
                       "end": round(tr.end, 3), "latency_ms": round(tr.latency_s * 1000, 1),
                       "decode_ms": round(tr.decode_s * 1000, 1)})


class _Session:
    def __init__(self, server: "AsrServer", ws, session_id: int) -> None:
        self.server, self.ws, self.id = server, ws, session_id
        self.decoder = P.OpusDecoder()
        gate = turn_end_gate(server.vad_config, server.turn_end)
        self.segmenter = VadSegmenter(server.vad_config, turn_end=gate)
        self.st = StreamingTranscriber(server.asr, server.partial_interval_s, gate=gate)
        self.expected_seq: int | None = None
        self.gaps = GapFill()
        self.frames = 0
        self._drain_task: asyncio.Task | None = None

    async def on_binary(self, data: bytes) -> None:
        seq, packet = P.unpack_frame(data)
        pcm_frames = []
        if self.expected_seq is not None and seq != self.expected_seq:
            gap = (seq - self.expected_seq) & 0xFFFFFFFF
            if gap > 0x7FFFFFFF:  # an old or duplicate frame
                return
            count, conceal = self.gaps.frames_for(gap)
            if conceal:
                pcm_frames += [self.decoder.decode(b"") for _ in range(count)]
            else:  # a long outage: enough silence to close an open utterance, not the whole gap
                pcm_frames += [np.zeros(P.FRAME_SAMPLES, np.float32)] * count
            self.server.frames_made_up += count
            self.frames += gap
        self.expected_seq = (seq + 1) & 0xFFFFFFFF
        pcm_frames.append(self.decoder.decode(packet))
        self.gaps.received()
        self.frames += 1
        for pcm in pcm_frames:
            for ev in self.segmenter.process(pcm):
                if isinstance(ev, SpeechOnset):
                    await self.ws.send(json.dumps({"type": "onset", "utt": ev.utt_id, "t": round(ev.t, 3)}))
                self.st.planner.add(ev)
        self._kick()

    def _kick(self) -> None:
        if self._drain_task is None or self._drain_task.done():
            self._drain_task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while (job := self.st.planner.next_job()) is not None:
            tr = await loop.run_in_executor(self.server.executor, self.st.decode_job, job)
            self.st.record(job, tr)
            await self.ws.send(transcript_message(tr))

    async def finish(self) -> None:
        for ev in self.segmenter.flush():
            self.st.planner.add(ev)
        while self._drain_task is not None and not self._drain_task.done():
            await self._drain_task
        await self._drain()


class AsrServer:
    """Serve until stop(); start() binds (port 0 picks a free one, see .port)."""

    def __init__(self, token: str, asr, host: str = "127.0.0.1", port: int = 8765,
                 vad_config: VadConfig = VadConfig(), partial_interval_s: float = 0.6,
                 turn_end: TurnEndConfig | None = None) -> None:
        if not token or len(token) < 8:
            raise ValueError("asr-serve: the shared token must be at least 8 characters")
        from broadcaster.redact import register_secret
        register_secret(token)
        self._token = token
        self.asr, self.host, self.port = asr, host, port
        self.vad_config, self.partial_interval_s = vad_config, partial_interval_s
        self.turn_end = turn_end
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr-decode")
        self._ids = itertools.count(1)
        self._server = None
        self.sessions_served = 0
        self.frames_made_up = 0     # concealment and silence put in for sequence gaps
        self.errors: dict[str, int] = {}

    async def start(self) -> "AsrServer":
        from websockets.asyncio.server import serve
        self._server = await serve(self._handle, self.host, self.port, max_size=P.WS_MAX_SIZE,
                                   ping_interval=10, ping_timeout=20, close_timeout=2)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("asr-serve listening on ws://%s:%d", self.host, self.port)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.executor.shutdown(wait=True)

    async def _refuse(self, ws, err: P.ProtocolError, peer) -> None:
        self.errors[err.code] = self.errors.get(err.code, 0) + 1
        log.warning("asr-serve: refusing %s: %s (%s)", peer, err.code, err)
        try:
            await ws.send(P.error_message(err.code, str(err)))
            await ws.close(err.close_code, err.code)
        except Exception:
            pass

    async def _hello(self, ws) -> None:
        try:
            first = await asyncio.wait_for(ws.recv(), P.HELLO_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise P.ProtocolError("auth_required", "no hello within %.0f s" % P.HELLO_TIMEOUT_S, P.CLOSE_AUTH)
        if not isinstance(first, str):
            raise P.ProtocolError("auth_required", "the first message must be a JSON hello with the token",
                                  P.CLOSE_AUTH)
        if len(first) > P.MAX_MESSAGE:
            raise P.ProtocolError("too_big", f"message of {len(first)} bytes > {P.MAX_MESSAGE}", P.CLOSE_TOO_BIG)
        msg = P.parse_json(first)
        if msg.get("type") != "hello":
            raise P.ProtocolError("auth_required", "the first message must be a hello", P.CLOSE_AUTH)
        if not P.token_ok(msg.get("token"), self._token):
            raise P.ProtocolError("auth_failed", "bad or missing token", P.CLOSE_AUTH)
        if msg.get("codec", "opus") != "opus" or msg.get("sample_rate", 16000) != 16000 \
                or msg.get("frame_ms", 20) != 20:
            raise P.ProtocolError("unsupported", "only opus, 16000 Hz, 20 ms frames are supported",
                                  P.CLOSE_PROTOCOL)

    async def _handle(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed
        peer = ws.remote_address
        try:
            await self._hello(ws)
            session = _Session(self, ws, next(self._ids))
            await ws.send(json.dumps({"type": "ready", "session": session.id}))
            self.sessions_served += 1
            async for msg in ws:
                if len(msg) > P.MAX_MESSAGE:
                    raise P.ProtocolError("too_big", f"message of {len(msg)} bytes > {P.MAX_MESSAGE}",
                                          P.CLOSE_TOO_BIG)
                if isinstance(msg, bytes):
                    await session.on_binary(msg)
                    continue
                m = P.parse_json(msg)
                if m["type"] == "end":
                    await session.finish()
                    await ws.send(json.dumps({"type": "done", "frames": session.frames}))
                    await ws.close(P.CLOSE_NORMAL, "done")
                    return
                raise P.ProtocolError("bad_message", f"unknown message type {m['type'][:32]!r}", P.CLOSE_PROTOCOL)
        except P.ProtocolError as err:
            await self._refuse(ws, err, peer)
        except ConnectionClosed:
            log.info("asr-serve: %s disconnected", peer)
        except Exception:  # never let one client take the server down
            log.exception("asr-serve: internal error with %s", peer)
            try:
                await ws.send(P.error_message("internal", "internal server error"))
                await ws.close(1011, "internal error")
            except Exception:
                pass


def serve_main(host: str, port: int, token: str, model: str | None = None, language: str = "en",
               turn_end: TurnEndConfig | None = None, vad_config: VadConfig = VadConfig()) -> int:
    """`broadcaster asr-serve`: run until SIGINT/SIGTERM. Returns the exit status. model,
    language and turn_end mean what mic.asr.* and mic.turn_end mean for local ASR."""
    from broadcaster.asr.whisper import WhisperAsr
    try:
        asr = WhisperAsr(model, language=language)
        server = AsrServer(token, asr, host, port, vad_config=vad_config, turn_end=turn_end)
    except (ValueError, RuntimeError) as exc:
        log.error("asr-serve: %s", exc)
        print(f"asr-serve: {exc}")
        return 2

    async def main() -> None:
        await server.start()
        print(f"asr-serve: listening on ws://{host}:{server.port} (model {asr.model_path}, "
              f"language {asr.language})", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    asyncio.run(main())
    return 0
