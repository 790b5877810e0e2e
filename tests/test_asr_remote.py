"""A real asr-serve on loopback, fed Opus by the real client; malformed clients refused."""

import asyncio
import contextlib
import io
import json
import re

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from broadcaster.asr import protocol as P
from broadcaster.asr.client import AsrAuthError, RemoteAsrClient
from broadcaster.asr.run import transcribe_file_main
from broadcaster.asr.server import GAP_CREDIT_CAP, LONG_GAP_SILENCE_FRAMES, GapFill
from broadcaster.asr.streaming import transcribe_frames
from broadcaster.mic.capture import WavFileSource
from tests.support.data.speech import KEY_WORDS, speech_with_pauses, words
from tests.support.servers.asr import TOKEN, RunningServer


@pytest.fixture(scope="module")
def server(asr):
    srv = RunningServer(asr)
    yield srv
    srv.close()


def test_remote_opus_path_gives_the_same_words_under_20_kbps(server, asr, two_wav):
    out = io.StringIO()
    assert transcribe_file_main(str(two_wav[0]), server.url, token=TOKEN, out=out) == 0
    text = out.getvalue()
    remote = [line.split(": ", 1)[1].rsplit("  (", 1)[0] for line in text.splitlines() if "FINAL" in line]
    local = [t.text for t in transcribe_frames(WavFileSource(str(two_wav[0])).frames(), asr, partials=False)]
    assert len(remote) == len(local) == 2
    for r, l, keys in zip(remote, local, KEY_WORDS):
        assert len(words(r) & keys) >= 2 and len(words(r) & words(l) & keys) >= 2, (r, l)
    kbps = float(re.search(r"([\d.]+) kbit/s on the wire", text).group(1))
    assert 5 < kbps <= 20
    assert TOKEN not in text


async def _raw_session(url, first, then=None):
    """Send `first` (and `then`), return (messages, close code)."""
    msgs = []
    async with connect(url, max_size=None) as ws:
        try:
            await ws.send(first)
            if then is not None:
                msgs.append(json.loads(await ws.recv()))
                await ws.send(then)
            async for m in ws:
                msgs.append(json.loads(m))
        except ConnectionClosed:
            pass
        return msgs, ws.close_code


HELLO = json.dumps({"type": "hello", "token": TOKEN})


@pytest.mark.parametrize("first,then,code,close", [
    (json.dumps({"type": "hello", "token": "wrong-token-xx"}), None, "auth_failed", P.CLOSE_AUTH),
    (P.pack_frame(0, b"\x01\x02\x03"), None, "auth_required", P.CLOSE_AUTH),
    (HELLO, P.pack_frame(0, b"garbage!garbage"), "bad_frame", P.CLOSE_BAD_DATA),
    (HELLO, b"\x07" + b"\0" * 20, "bad_frame", P.CLOSE_BAD_DATA),
    (HELLO, b"\x01" + b"\0" * (P.MAX_MESSAGE + 10), "too_big", P.CLOSE_TOO_BIG),
    (HELLO, "{not json", "bad_json", P.CLOSE_PROTOCOL),
    (json.dumps({"type": "hello", "token": TOKEN, "sample_rate": "48k"}), None, "unsupported", P.CLOSE_PROTOCOL),
])
def test_malformed_clients_get_a_json_error_and_close_code(server, first, then, code, close):
    msgs, close_code = server.run(_raw_session(server.url, first, then))
    errors = [m for m in msgs if m["type"] == "error"]
    assert errors and errors[0]["code"] == code and errors[0]["message"]
    assert TOKEN not in json.dumps(msgs)
    assert close_code == close


def test_huge_message_is_cut_by_max_size_and_others_still_served(server, two_wav):
    async def huge():
        async with connect(server.url, max_size=None) as ws:
            await ws.send(HELLO)
            await ws.recv()
            await ws.send(b"\x01" + b"\0" * (P.WS_MAX_SIZE + 1))
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code

    assert server.run(huge()) == P.CLOSE_TOO_BIG
    out = io.StringIO()
    assert transcribe_file_main(str(two_wav[0]), server.url, token=TOKEN, out=out) == 0
    assert "football" in out.getvalue().lower()


def test_client_reports_auth_refusal_without_retrying(server):
    async def go():
        client = RemoteAsrClient(server.url, "not-the-token", lambda m: None)
        await client.start()
        with pytest.raises(AsrAuthError):
            await client.wait_ready(5)
        await client.close()
        return client.connects

    assert server.run(go()) == 0


def test_client_reconnects_after_server_restart(asr, two_wav):
    srv = RunningServer(asr)
    port = srv.server.port
    got = []
    frames = list(WavFileSource(str(two_wav[0])).frames())

    async def go():
        client = RemoteAsrClient(srv.url, TOKEN, got.append, drop_when_full=False)
        await client.start()
        await client.wait_ready(5)
        for f in frames[:50]:
            await client.send_frame(f)
        await asyncio.sleep(0.2)
        return client

    client = srv.run(go())
    srv.run(srv.server.stop())           # server goes away
    from broadcaster.asr.server import AsrServer
    srv.server = AsrServer(TOKEN, asr, port=port)
    srv.run(srv.server.start())          # and comes back on the same port

    async def finish():
        await client.wait_ready(10)
        for f in frames[50:]:
            await client.send_frame(f)
        await client.finish(30)
        return client.connects

    assert srv.run(finish(), timeout=60) == 2
    finals = [m["text"] for m in got if m["type"] == "final"]
    assert any("football" in f.lower() for f in finals), finals
    srv.close()


def test_remote_mic_pipeline_live_onset_locally_transcripts_from_server(server, tmp_path):
    from broadcaster.asr.remote_pipeline import RemoteMicPipeline
    path, spans = speech_with_pauses(tmp_path / "one.wav", texts=["Please tell me about the football game."],
                                     lead_s=0.4, tail_s=0.8)
    got, onsets = [], []
    pipe = RemoteMicPipeline(WavFileSource(str(path), realtime=True), server.url, TOKEN, got.append,
                             loop=server.loop, on_onset=onsets.append).start()
    pipe.join(20)
    assert pipe.error is None and len(onsets) == 1 and abs(onsets[0].t - spans[0][0]) < 0.25
    finals = [t for t in got if t.kind == "final"]
    assert len(finals) == 1 and "football" in words(finals[0].text)
    assert any(t.kind == "partial" for t in got)
    assert pipe.client.frames_dropped == 0


def test_live_client_drops_oldest_frames_when_the_link_is_down():
    import numpy as np

    async def go():
        # A closed port: the client keeps retrying with backoff while the mic keeps producing.
        client = RemoteAsrClient("ws://127.0.0.1:9", TOKEN, lambda m: None, queue_frames=5)
        await client.start()
        for _ in range(20):
            client.submit_threadsafe(np.zeros(320, np.float32))
        await asyncio.sleep(0.05)
        queued, dropped = len(client._queue), client.frames_dropped
        await client.close()
        return queued, dropped

    assert asyncio.run(go()) == (5, 15)


def test_serve_main_in_a_subprocess_serves_and_stops_on_sigterm(two_wav, tmp_path):
    import signal
    import subprocess
    import sys

    from tests.support.broadcaster_proc import run_env
    from tests.support.paths import ROOT
    from tests.support.ports import free_port
    from tests.support.processes import stop

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from broadcaster.asr.run import serve_main;"
                             f"sys.exit(serve_main('127.0.0.1', {port}, {TOKEN!r}))"],
                            cwd=ROOT, env=run_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "listening on ws://127.0.0.1:%d" % port in proc.stdout.readline()
        out = io.StringIO()
        assert transcribe_file_main(str(two_wav[0]), f"ws://127.0.0.1:{port}", token=TOKEN, out=out) == 0
        assert "weather" in out.getvalue().lower()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert TOKEN not in proc.stdout.read()
    finally:
        stop(proc, signal.SIGKILL)


def test_sequence_jumps_cannot_make_the_server_do_more_than_it_receives(server):
    """Every packet jumps the sequence by a million frames: the server makes up at most about
    one frame per frame received (plus the first second), not a second of silence each."""
    encoder = P.OpusEncoder()
    packet = encoder.encode(np.zeros(P.FRAME_SAMPLES, np.float32))
    sent = 200

    async def jumper():
        async with connect(server.url, max_size=None) as ws:
            await ws.send(HELLO)
            await ws.recv()
            for i in range(sent):
                await ws.send(P.pack_frame(i * 1_000_000, packet))
            await ws.send(json.dumps({"type": "end"}))
            with contextlib.suppress(ConnectionClosed, asyncio.TimeoutError):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)

    before = server.server.frames_made_up
    server.run(jumper(), timeout=60)
    made_up = server.server.frames_made_up - before
    assert 0 < made_up <= sent + LONG_GAP_SILENCE_FRAMES, made_up


def test_gap_fill_grants_a_real_outage_its_second_of_silence():
    gaps = GapFill()
    for _ in range(500):
        gaps.received()
    assert gaps.frames_for(5) == (5, True)
    assert gaps.frames_for(10_000) == (LONG_GAP_SILENCE_FRAMES, False)
    assert gaps.frames_for(10_000)[0] <= GAP_CREDIT_CAP - LONG_GAP_SILENCE_FRAMES - 5
