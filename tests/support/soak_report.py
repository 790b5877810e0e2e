"""The soak's report, from the raw data tools/soak.py keeps in its output folder.

Everything here reads files only (events.jsonl, samples.jsonl, ws.jsonl, broadcaster.log,
meta.json and the recordings), so a report can be written again, or improved, after the run.

Definitions:
- Air: on from each "on air:" line of the broadcaster's log until the next line saying the
  connection was lost ("...; reconnecting in ...") or the broadcast ended.
- Reconnect delay: from the soak bringing the ingest back (nginx-rtmp accepting again) to the
  broadcaster's next "on air:" line.
- Asked: chat messages /chat accepted (202). Answered: a "question" on /chat/ws for the
  message, then its "answer" (sent once the line has played out of the mixer). Not taken up:
  accepted but never a question: expired in the queue (older than chat.selection.max_age_s by
  the end) or still queued at the end.
- Spoken into an outage (lost): an answered reply whose audio ended while off air, i.e. its
  ending reached nobody. Cut by an outage: an outage began while it was playing; the
  broadcaster holds such a line and plays it again from its start once on air, so it is
  counted apart, not as lost, as long as it ended on air.
- Picture gaps: steps over two frames between video timestamps. A gap while the rate
  controller sent only part of the frames (its log: "1/N of the frames", a slow link; on a
  busy machine loopback can be one) is its intended answer and is listed apart.
- RSS slope: a least-squares line through the RSS samples after the warm-up (the first cycle
  of faults, so each kind of fault has happened once), in MB per hour.
"""

from __future__ import annotations

import bisect
import json
import re
import statistics
from datetime import datetime
from pathlib import Path

import numpy as np

from tests.support.av_timing import recording_timing
from tests.support.soak_schedule import FAULT_SECONDS, Fault

CHAT_MAX_AGE_S = 60.0      # chat.selection.max_age_s (the soak keeps the default)
LOG_LINE = re.compile(r'^ts=(\S+) level=(\w+) logger=(\S+) msg=(".*?(?<!\\)"|\S+)')
TRACEBACK = "Traceback (most recent call last)"
ID_IN_TEXT = re.compile(r"(#\d+)$|^(Question \d+):")


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue        # a line cut by the run's end
    return rows


def log_lines(path: Path) -> list[tuple[float, str, str, str]]:
    """(wall time, level, logger, message) per line of the broadcaster's logfmt log."""
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        ts = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=None)
        t = (ts - datetime(1970, 1, 1)).total_seconds()
        msg = m.group(4)
        if msg.startswith('"'):
            msg = msg[1:-1].replace('\\"', '"')
        out.append((t, m.group(2), m.group(3), msg))
    return out


def air_intervals(lines, end_t: float) -> list[tuple[float, float]]:
    """[(on, off)] wall times the output was on air, from the publisher's log lines."""
    intervals, on = [], None
    for t, _, logger, msg in lines:
        if logger.endswith("output.publisher") and msg.startswith("on air:"):
            on = t if on is None else on
        elif on is not None and (("reconnecting in" in msg and logger.endswith("publisher"))
                                 or msg.startswith("broadcast ended")):
            intervals.append((on, t))
            on = None
    if on is not None:
        intervals.append((on, end_t))
    return intervals


def frame_cut_intervals(lines, end_t: float) -> list[tuple[float, float]]:
    """[(from, to)] wall times the rate controller sent only part of the frames (its log says
    "1/N of the frames"): picture gaps there are the controller's answer to a slow link."""
    intervals, since = [], None
    for t, _, logger, msg in lines:
        if not logger.endswith("ratecontrol.monitor") or not msg.startswith("rate control:"):
            continue
        if "of the frames" in msg:
            since = t if since is None else since
        elif since is not None:
            intervals.append((since, t))
            since = None
    if since is not None:
        intervals.append((since, end_t))
    return intervals


def recording_starts(recordings: list[Path], intervals) -> dict[str, float]:
    """Each recording's wall start: the "on air:" time nearest its name's Unix time
    (nginx-rtmp names a recording KEY-UNIXTIME.flv when the stream is published)."""
    starts = {}
    for path in recordings:
        try:
            named = float(path.stem.rsplit("-", 1)[1])
        except (IndexError, ValueError):
            continue
        nearest = min((on for on, _ in intervals), key=lambda on: abs(on - named), default=None)
        if nearest is not None and abs(nearest - named) < 2.0:
            starts[str(path)] = nearest
    return starts


def unexplained_gaps(timings, starts, cuts, slack_s: float = 1.0) -> list[dict]:
    """Picture gaps (over two frames) not inside a frame-rate cut of the rate controller."""
    out = []
    for r in timings:
        start = starts.get(r["path"])
        for pts, ms in r.get("video_gaps", []):
            wall = None if start is None else start + pts
            if wall is not None and any(a - slack_s <= wall <= b + slack_s for a, b in cuts):
                continue
            out.append({"recording": Path(r["path"]).name, "pts_s": pts, "gap_ms": ms, "wall_t": wall})
    return sorted(out, key=lambda g: -g["gap_ms"])


def on_air_at(intervals, t: float) -> bool:
    i = bisect.bisect_right([a for a, _ in intervals], t) - 1
    return i >= 0 and t <= intervals[i][1]


def _key(user: str, text: str) -> tuple[str, str]:
    m = ID_IN_TEXT.search(text.strip())
    return user, (m.group(1) or m.group(2)) if m else text.strip()


def replies(events, ws, intervals, end_t: float) -> dict:
    asked = [e for e in events if e.get("kind") == "chat" and e.get("status") == 202]
    refused = [e for e in events if e.get("kind") == "chat" and e.get("status") != 202]
    # questions and answers come in turn order: each answer closes the question before it
    turns, question = [], None
    for w in ws:
        if w.get("type") == "question" and w.get("kind") == "chat":
            question = w
        elif w.get("type") == "answer" and w.get("kind") == "chat" and question is not None:
            turns.append((question, w))
            question = None
    taken = {_key(q["user"], q["text"]): (q, a) for q, a in turns}
    answered, lost, cut, expired, queued = [], [], [], [], []
    offs = [b for _, b in intervals]
    for e in asked:
        pair = taken.get(_key(e["user"], e["text"]))
        if pair is None:
            if e["t"] + CHAT_MAX_AGE_S < end_t:
                expired.append(e)
            else:
                queued.append(e)
            continue
        q, a = pair
        answered.append(e)
        if not on_air_at(intervals, a["t"]):
            lost.append({"user": e["user"], "text": e["text"][:60], "answer_t": a["t"]})
        elif any(q["t"] < off < a["t"] for off in offs):
            cut.append({"user": e["user"], "text": e["text"][:60], "answer_t": a["t"]})
    return {"asked": len(asked), "refused_at_intake": len(refused), "answered": len(answered),
            "spoken_into_outage": len(lost), "lost": lost, "cut_and_replayed": len(cut), "cut": cut,
            "not_taken_up_expired": len(expired), "not_taken_up_queued_at_end": len(queued),
            "turns_seen": len(turns),
            "answered_while_off_air_any_kind": sum(1 for w in ws if w.get("type") == "answer"
                                                   and not on_air_at(intervals, w["t"]))}


def reconnects(events, lines) -> list[dict]:
    ons = [t for t, _, logger, msg in lines if logger.endswith("publisher") and msg.startswith("on air:")]
    out = []
    for e in events:
        if e.get("kind") != "ingest_back":
            continue
        i = bisect.bisect_left(ons, e["t"])
        down = next((d for d in reversed(events) if d.get("kind") == "ingest_down" and d["t"] < e["t"]), None)
        out.append({"how": e.get("how"), "back_t": e["t"],
                    "down_s": round(e["t"] - down["t"], 2) if down else None,
                    "back_on_air_s": round(ons[i] - e["t"], 3) if i < len(ons) else None})
    return out


def rss_fit(samples, since_mono: float) -> dict:
    pts = [(s["mono"], s["rss_kb"] / 1024) for s in samples if "rss_kb" in s and s["mono"] >= since_mono]
    if len(pts) < 3:
        return {"samples": len(pts), "slope_mb_per_hour": None}
    t, mb = np.array(pts).T
    slope = np.polyfit(t, mb, 1)[0] * 3600
    half = t >= t[0] + (t[-1] - t[0]) / 2
    late = np.polyfit(t[half], mb[half], 1)[0] * 3600 if half.sum() >= 3 else None
    return {"samples": len(pts), "from_mb": round(float(mb[0]), 1), "to_mb": round(float(mb[-1]), 1),
            "max_mb": round(float(mb.max()), 1), "hours": round(float(t[-1] - t[0]) / 3600, 3),
            "slope_mb_per_hour": round(float(slope), 2),
            "second_half_slope_mb_per_hour": None if late is None else round(float(late), 2)}


def healthz_failures(health: list[dict]) -> tuple[int, int]:
    """(failed /healthz samples, samples before its first answer). Until it first answers the
    process is still starting (imports, models), which is no failure of the endpoint; after
    that only 200 (on air) and 503 (off air, saying why) are answers. An endpoint that never
    answered failed every sample."""
    first = next((i for i, h in enumerate(health) if h.get("status") is not None), None)
    if first is None:
        return len(health), 0
    return sum(1 for h in health[first:] if h.get("status") not in (200, 503)), first


def warmup_end_mono(meta: dict) -> float:
    """The end of the first cycle of faults when there are several cycles, else the warm-up."""
    schedule = [Fault(**f) for f in meta["schedule"]]
    per_cycle = len(FAULT_SECONDS)
    start = meta["start_mono"]
    if len(schedule) > per_cycle:
        return start + schedule[per_cycle].start_s
    return start + (schedule[0].start_s if schedule else 0.0)


def analyse(out: Path) -> dict:
    meta = json.loads((out / "meta.json").read_text())
    events = read_jsonl(out / "events.jsonl")
    samples = read_jsonl(out / "samples.jsonl")
    ws = read_jsonl(out / "ws.jsonl")
    lines = log_lines(out / "broadcaster.log")
    log_text = (out / "broadcaster.log").read_text(encoding="utf-8", errors="replace")
    start_t = next(e["t"] for e in events if e["kind"] == "run_start")
    # a run still going (or cut short) ends at the last thing any file recorded
    end_t = next((e["t"] for e in events if e["kind"] == "run_end"),
                 max(rows[-1]["t"] for rows in (events, samples, ws) if rows))
    intervals = air_intervals(lines, end_t)
    on_s = sum(min(b, end_t) - max(a, start_t) for a, b in intervals if b > start_t and a < end_t)
    rec = reconnects(events, lines)
    delays = [r["back_on_air_s"] for r in rec if r["back_on_air_s"] is not None]
    recordings = sorted((out / "nginx" / "rec").glob("*.flv"))
    timings = [recording_timing(p).as_dict() for p in recordings]
    good = [r for r in timings if r["error"] is None]
    cuts = frame_cut_intervals(lines, end_t)
    gaps = unexplained_gaps(good, recording_starts(recordings, intervals), cuts)
    frame_ms = 1000.0 / meta["fps"]
    cpu = [(s["mono"], s["cpu_s"]) for s in samples if "cpu_s" in s]
    health = [s["healthz"] for s in samples if "healthz" in s]
    health_failures, starting = healthz_failures(health)
    series = [s["metrics_series"] for s in samples if "metrics_series" in s]
    exited = next((e for e in events if e["kind"] == "broadcaster_exited"), {})
    report = {
        "minutes": round((end_t - start_t) / 60, 2),
        "on_air_fraction": round(on_s / (end_t - start_t), 4),
        "outages": len(intervals) - 1 if intervals else 0,
        "faults": [f["kind"] for f in meta["schedule"]],
        "reconnects": rec,
        "back_on_air_median_s": round(statistics.median(delays), 3) if delays else None,
        "back_on_air_max_s": max(delays) if delays else None,
        "back_on_air_after_kill_median_s": _median(r for r in rec if r["how"] == "killed"),
        "back_on_air_after_silent_median_s": _median(r for r in rec if r["how"] == "silent"),
        "replies": replies(events, ws, intervals, end_t),
        "recordings": len(recordings),
        "unreadable_recordings": [r["path"] for r in timings if r["error"]],
        "av_end_offset_max_ms": max((abs(r["av_end_offset_ms"]) for r in good), default=None),
        "av_drift_max_ms": max((r["max_drift_ms"] for r in good), default=None),
        "audio_pts_drift_max_ms": max((r["audio_pts_drift_ms"] for r in good), default=None),
        "max_video_gap_ms": max((r["max_video_gap_ms"] for r in good), default=None),
        "max_audio_gap_ms": max((r["max_audio_gap_ms"] for r in good), default=None),
        "frame_rate_cuts": len(cuts),
        "frame_rate_cut_s": round(sum(b - a for a, b in cuts), 1),
        "max_video_gap_outside_cuts_ms": max((g["gap_ms"] for g in gaps), default=0.0),
        "video_gaps_outside_cuts": gaps[:20],
        "frame_ms": frame_ms,
        "recorded_s": round(sum(r["duration_s"] for r in good), 1),
        "rss": rss_fit(samples, warmup_end_mono(meta)),
        "rss_whole_run": rss_fit(samples, 0.0),
        "cpu_percent_of_one_core": (round((cpu[-1][1] - cpu[0][1]) / (cpu[-1][0] - cpu[0][0]) * 100, 1)
                                    if len(cpu) > 1 else None),
        "threads_last": next((s["threads"] for s in reversed(samples) if "threads" in s), None),
        "fds_first_last": _first_last(s.get("fds") for s in samples),
        "metrics_series_first_last": _first_last(series),
        "healthz_failures": health_failures,
        "healthz_unanswered_at_start": starting,
        "healthz_max_ms": max((h.get("ms", 0) for h in health), default=None),
        "tracebacks": log_text.count(TRACEBACK),
        "error_lines": sum(1 for _, level, _, _ in lines if level in ("error", "critical")),
        "warning_lines": sum(1 for _, level, _, _ in lines if level == "warning"),
        "broadcaster_returncode": exited.get("returncode"),
        "broadcaster_exit_s": exited.get("exit_s"),
        "closing_line": next((m for _, _, _, m in reversed(lines) if m.startswith("broadcast ended")), None),
        "recording_timings": timings,
    }
    return report


def _median(rows):
    values = [r["back_on_air_s"] for r in rows if r["back_on_air_s"] is not None]
    return round(statistics.median(values), 3) if values else None


def _first_last(values):
    values = [v for v in values if v is not None]
    return [values[0], values[-1]] if values else None


def targets(r: dict) -> list[tuple[str, object, bool]]:
    """The issue's targets for a soak: (what, measured, met)."""
    back = r["back_on_air_after_kill_median_s"]
    slope = r["rss"]["slope_mb_per_hour"]
    drift = r["av_drift_max_ms"]
    return [
        ("back on air <= 1 s after a killed ingest returns (median)", back, back is not None and back <= 1.0),
        ("no reply spoken into an outage", r["replies"]["spoken_into_outage"],
         r["replies"]["spoken_into_outage"] == 0),
        ("RSS slope after warm-up < 5 MB/h", slope, slope is not None and slope < 5.0),
        ("A/V offset within one frame in every window", drift, drift is not None and drift <= r["frame_ms"]),
        ("no traceback in the log", r["tracebacks"], r["tracebacks"] == 0),
    ]


def markdown(r: dict) -> str:
    rep, rss = r["replies"], r["rss"]
    rows = [
        ("Run", f"{r['minutes']} min, {len(r['faults'])} faults, {r['outages']} outages"),
        ("On air", f"{r['on_air_fraction'] * 100:.2f} % of the wall time"),
        ("Back on air after the ingest returns (median / max)",
         f"{r['back_on_air_median_s']} s / {r['back_on_air_max_s']} s "
         f"(killed: {r['back_on_air_after_kill_median_s']} s, silent: {r['back_on_air_after_silent_median_s']} s)"),
        ("Replies asked / answered", f"{rep['asked']} / {rep['answered']} "
         f"(refused at intake {rep['refused_at_intake']}, expired in the queue {rep['not_taken_up_expired']}, "
         f"queued at the end {rep['not_taken_up_queued_at_end']})"),
        ("Replies spoken into an outage", f"{rep['spoken_into_outage']} (cut and replayed: {rep['cut_and_replayed']})"),
        ("A/V end offset (max over recordings)", f"{r['av_end_offset_max_ms']} ms (one frame: {r['frame_ms']:.0f} ms)"),
        ("A/V offset at each 10 s window (max; a frame and an AAC packet quantise it)",
         f"{r['av_drift_max_ms']} ms; audio timestamps against sample counts at most "
         f"{r['audio_pts_drift_max_ms']} ms off"),
        ("Largest video / audio gap", f"{r['max_video_gap_ms']} / {r['max_audio_gap_ms']} ms; "
         f"outside the rate controller's {r['frame_rate_cuts']} frame-rate cuts "
         f"({r['frame_rate_cut_s']} s): video {r['max_video_gap_outside_cuts_ms']} ms"),
        ("Recordings", f"{r['recordings']} ({r['recorded_s']} s), unreadable: {len(r['unreadable_recordings'])}"),
        ("RSS after warm-up", f"{rss.get('from_mb')} -> {rss.get('to_mb')} MB, slope {rss['slope_mb_per_hour']} MB/h "
         f"(second half {rss.get('second_half_slope_mb_per_hour')} MB/h); whole run "
         f"{r['rss_whole_run']['slope_mb_per_hour']} MB/h"),
        ("CPU", f"{r['cpu_percent_of_one_core']} % of one core"),
        ("Threads (last), fds / metrics series (first, last)",
         f"{r['threads_last']}, {r['fds_first_last']} / {r['metrics_series_first_last']}"),
        ("/healthz", f"{r['healthz_failures']} failures, slowest {r['healthz_max_ms']} ms "
                     f"(unanswered while starting: {r.get('healthz_unanswered_at_start', 0)})"),
        ("Log", f"{r['tracebacks']} tracebacks, {r['error_lines']} errors, {r['warning_lines']} warnings"),
        ("Exit", f"code {r['broadcaster_returncode']} after SIGTERM in {r['broadcaster_exit_s']} s; "
         f"{r['closing_line']}"),
    ]
    text = "# Soak report\n\n| | |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)
    text += "\n## Targets\n\n| target | measured | met |\n|---|---|---|\n"
    text += "".join(f"| {name} | {value} | {'yes' if ok else 'NO'} |\n" for name, value, ok in targets(r))
    text += "\n## Reconnects\n\n| ingest | down (s) | back on air after (s) |\n|---|---|---|\n"
    text += "".join(f"| {x['how']} | {x['down_s']} | {x['back_on_air_s']} |\n" for x in r["reconnects"])
    text += ("\n## Recordings\n\n| file | s | A/V end (ms) | max drift (ms) | video gap (ms) | "
             "audio gap (ms) | video rate | audio rate |\n|---|---|---|---|---|---|---|---|\n")
    text += "".join(f"| {Path(t['path']).name} | {t['duration_s']} | {t['av_end_offset_ms']} | {t['max_drift_ms']} "
                    f"| {t['max_video_gap_ms']} | {t['max_audio_gap_ms']} | {t['video_rate']} | {t['audio_rate']} |\n"
                    if t["error"] is None else f"| {Path(t['path']).name} | {t['error']} |||||||\n"
                    for t in r["recording_timings"])
    if rep["lost"]:
        text += "\n## Replies spoken into an outage\n\n" + "".join(f"- {x}\n" for x in rep["lost"])
    return text + "\n" + (__doc__.split("Definitions:", 1)[1].strip() and
                          "## Definitions\n\n" + __doc__.split("Definitions:", 1)[1].strip() + "\n")


def write_report(out: Path) -> str:
    """Analyse the folder, write report.json and report.md there; returns the markdown."""
    report = analyse(out)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    text = markdown(report)
    (out / "report.md").write_text(text)
    return text
