"""Three minutes on air through every scripted fault (tools/soak.py): the ingest killed and
silent, the LLM down and slow, the remote voice failing, a chat flood with hostile lines. The
broadcaster must come back after each outage, answer or account for every question, speak
nothing into an outage, stay in sync and log no traceback; the report must be written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.broadcaster_proc import run_env
from tests.support.paths import ROOT, TOOLS
from tests.support.servers.nginx_rtmp import NginxRtmp
from tests.support.soak_report import air_intervals, healthz_failures, replies
from tests.support.soak_schedule import FAULT_SECONDS, fault_schedule, tail_seconds

MINUTES = 3


@pytest.fixture(scope="module")
def soak(tmp_path_factory):
    missing = NginxRtmp.missing()
    if missing:
        pytest.skip(missing)
    out = tmp_path_factory.mktemp("soak") / "run"
    done = subprocess.run([sys.executable, str(TOOLS / "soak.py"), "run", "--minutes", str(MINUTES),
                           "--out", str(out)], capture_output=True, text=True, timeout=MINUTES * 60 + 50,
                          env=run_env(), cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return out, json.loads((out / "report.json").read_text())


def test_the_report_is_written_from_the_run(soak):
    out, report = soak
    assert "# Soak report" in (out / "report.md").read_text()
    assert report["minutes"] >= MINUTES - 0.1
    assert report["broadcaster_returncode"] == 0
    assert set(report["faults"]) == {"ingest_kill", "ingest_silent", "llm_down", "llm_slow",
                                     "tts_fail", "chat_flood"}
    assert report["recordings"] >= 3 and not report["unreadable_recordings"]


def test_no_traceback_and_health_always_answers(soak):
    _, report = soak
    assert report["tracebacks"] == 0
    assert report["healthz_failures"] == 0


def test_back_on_air_after_each_ingest_outage(soak):
    _, report = soak
    kinds = [r["how"] for r in report["reconnects"]]
    assert kinds.count("killed") >= 1 and kinds.count("silent") >= 1
    assert all(r["back_on_air_s"] is not None for r in report["reconnects"]), report["reconnects"]
    assert report["outages"] == len(report["reconnects"])


def test_every_question_is_answered_or_accounted_and_none_spoken_into_an_outage(soak):
    _, report = soak
    replies = report["replies"]
    assert replies["asked"] >= 15
    assert replies["answered"] + replies["not_taken_up_expired"] + \
        replies["not_taken_up_queued_at_end"] == replies["asked"], replies
    assert replies["not_taken_up_expired"] == 0, replies
    assert replies["spoken_into_outage"] == 0, replies["lost"]
    assert replies["answered_while_off_air_any_kind"] == 0


def test_audio_and_video_end_together_in_every_recording(soak):
    _, report = soak
    frame_ms = report["frame_ms"]
    for timing in report["recording_timings"]:
        assert abs(timing["av_end_offset_ms"]) <= frame_ms, timing
        assert timing["max_drift_ms"] <= frame_ms, timing
        assert abs(timing["audio_rate"] - 1.0) < 0.002, timing
        assert timing["audio_pts_drift_ms"] <= 2.0, timing      # FLV rounds timestamps to 1 ms


@pytest.mark.parametrize("minutes,cycles", [(3, 1), (60, 10)])
def test_the_fault_schedule_scales_with_the_run(minutes, cycles):
    run_s = minutes * 60
    faults = fault_schedule(run_s)
    assert len(faults) == cycles * len(FAULT_SECONDS)
    assert [f.kind for f in faults[:len(FAULT_SECONDS)]] == list(FAULT_SECONDS)
    assert all(a.end_s < b.start_s for a, b in zip(faults, faults[1:]))     # one at a time
    assert faults[-1].end_s <= run_s - tail_seconds(run_s)


def _log(t, logger, msg):
    return (t, "info", "broadcaster." + logger, msg)


def test_a_reply_that_ends_off_air_is_lost_and_one_cut_then_replayed_is_not():
    lines = [_log(10, "output.publisher", "on air: rtmp://x"),
             _log(20, "output.publisher", "ingest connection lost: Broken pipe; reconnecting in 2.0 s"),
             _log(25, "output.publisher", "on air: rtmp://x")]
    intervals = air_intervals(lines, end_t=100)
    assert intervals == [(10, 20), (25, 100)]

    def asked(user, t):
        return {"kind": "chat", "status": 202, "user": user, "text": f"Question {t}: hi", "t": t}

    def turn(user, q, a):
        return [{"type": "question", "kind": "chat", "user": user, "text": f"Question {q}: hi", "t": q},
                {"type": "answer", "kind": "chat", "user": user, "text": "ok", "t": a}]
    events = [asked("a", 11), asked("b", 18), asked("c", 19), asked("d", 90)]
    ws = turn("a", 11, 14) + turn("b", 18, 22) + turn("c", 19, 27)
    r = replies(events, ws, intervals, end_t=100)
    assert (r["asked"], r["answered"], r["spoken_into_outage"], r["cut_and_replayed"]) == (4, 3, 1, 1)
    assert r["lost"][0]["user"] == "b"
    assert r["not_taken_up_queued_at_end"] == 1


def test_healthz_counts_failures_once_the_endpoint_is_up():
    refused, ok, off_air, error = {"status": None}, {"status": 200}, {"status": 503}, {"status": 500}
    assert healthz_failures([refused, refused, ok, off_air, ok]) == (0, 2)     # starting up
    assert healthz_failures([ok, refused, error, ok]) == (2, 0)                # down once up
    assert healthz_failures([refused, refused]) == (2, 0)                      # never up
    assert healthz_failures([]) == (0, 0)
