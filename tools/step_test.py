"""Step test: a real broadcast through a real bottleneck, rate control on vs fixed bitrate.

    sudo python tools/step_test.py [--short] [--protocols rtmp,srt] [--modes on,off] [--out DIR]
         [--link auto|netns|proxy] [--silent] [--narrow] [--size WxH --fps N --ceiling KBITS]

--narrow is the issue-13 case: 1280x720@25, ceiling 3000 kbit/s, 6 Mbit/s narrowing to
400 kbit/s (tbf latency 2000 ms); with --silent the anchor is silent and there is no audio
bed, so audio alone makes a few kbit/s and nothing else keeps the link busy. Both ingests
record what they receive (nginx-rtmp's FLV, srt-live-transmit's TS); the recording is read
with PyAV for the worst picture freeze after each step (the largest gap between video
timestamps), and, per step down, when the ingest's video bitrate (1 s windows, by timestamp)
was first under the new capacity and then back to half of (capacity - 128 kbit/s of audio).

--link netns: runs itself again inside a fresh network namespace (`unshare -n`, needs root),
sets lo's MTU to 1500 and shapes lo with `tc ... tbf` to a capacity schedule (default 3 Mbit/s
for 20 s, 1 for 20 s, 0.5 for 20 s, 3 for 25 s; --short: 4 s each).
--link proxy: no namespace and no root; nginx-rtmp and srt-live-transmit listen on free
loopback ports and the broadcaster pushes through throttling proxies (tools/throttle_proxy.py:
a token bucket on the upstream direction, TCP with a small receive window so the backlog stays
in the sender's socket, UDP with a 300 ms drop-tail queue) whose rate follows the schedule.
--link auto (default): netns where a namespace with tc can be made, else proxy (says why).
--reconnect-at S (RTMP): the ingest is stopped and started again S s into the schedule, so the
broadcaster reconnects; each session nginx-rtmp recorded is read for its audio bitrate (a
reconnect on a link measured to be narrow opens with less audio).
For each protocol (nginx-rtmp, an srt-live-transmit listener) and each mode (controller on,
off = fixed bitrate, the baseline) it runs `broadcaster run` with a per-tick trace
(ratecontrol.trace), then writes DIR/step_test.csv (all traces with the capacity),
DIR/step_test.png, DIR/figures.json (with the link used) and prints RFC 8868 style figures.

The studio scene alone is a mostly static picture that compresses far below a multi-Mbit/s
ceiling and cannot fill the link, so the broadcaster is run with a band of moving noise
over the lower half of the picture (--no-busy-picture turns it off), and the encoder makes
whatever bitrate it is asked for. The scene also gets a continuous audio bed (--silent turns
it off): a silent anchor makes AAC send a few kbit/s of the 128 the controller keeps for audio.
The proxy link is not identical to the tbf one, so compare figures within one link kind:
the tbf's queue shows up in the TCP sender's RTT, the proxy's as unsent bytes in the sender's
socket (plus up to ~20 kB that the proxy's receive window holds, acknowledged but not yet
forwarded); and a tbf on the sender's own host holds SRT's UDP packets against the sender
socket's send buffer, so at 3 Mbit/s it back-pressures SRT instead of
dropping, while the proxy, like a router further away, drops a burst beyond its queue.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import yardstick  # noqa: E402
from tests.support.broadcaster_proc import run_env, write_config  # noqa: E402
from tests.support.media import write_wav  # noqa: E402
from tests.support.polling import wait_for  # noqa: E402
from tests.support.ports import free_port, free_udp_port  # noqa: E402
from tests.support.processes import stop  # noqa: E402
from tests.support.servers.nginx_rtmp import NginxRtmp  # noqa: E402
from tests.support.servers.srt import SLT, start_receiver  # noqa: E402
from tools import throttle_proxy  # noqa: E402

RTMP_PORT, SRT_PORT = 1935, 9000
DEFAULT_SCHEDULE = "3000:20,1000:20,500:20,3000:25"
SHORT_SCHEDULE = "3000:4,1000:4,500:4,3000:6"
CEILING_KBPS, FIXED_KBPS, FLOOR_KBPS = 4000, 2500, 250
SIZE, FPS = "854x480", 20
# the issue-13 case: a new user's 720p25 at 3000 kbit/s, silent, on a link that narrows to 400
NARROW_SCHEDULE = "6000:20,400:25"
NARROW_SHORT_SCHEDULE = "6000:8,400:14"
NARROW_SIZE, NARROW_FPS, NARROW_CEILING_KBPS = "1280x720", 25, 3000
TBF_LATENCY_MS = 300
AUDIO_KBPS = 128        # what the controller keeps for audio (figures relative to the link)


# -- running inside the namespace -----------------------------------------------------------
def sh(cmd: str) -> None:
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)


def shape(kbit: int, first: bool = False, latency_ms: int | None = None) -> None:
    """Only the upstream (packets to the ingest ports) goes through the tbf: on lo both
    directions share one device, and ACKs stuck behind our own media would not be a real
    uplink bottleneck (TCP then stalls in retransmission timeouts)."""
    if first:
        sh("tc qdisc add dev lo root handle 1: htb default 20 r2q 100000")
        sh("tc class add dev lo parent 1: classid 1:10 htb rate 10gbit")   # the tbf below shapes
        sh("tc class add dev lo parent 1: classid 1:20 htb rate 10gbit")   # everything else
        for port in (RTMP_PORT, SRT_PORT):
            sh(f"tc filter add dev lo parent 1: protocol ip u32 match ip dport {port} 0xffff flowid 1:10")
    verb = "add" if first else "change"
    latency = TBF_LATENCY_MS if latency_ms is None else latency_ms
    sh(f"tc qdisc {verb} dev lo parent 1:10 handle 10: tbf rate {kbit}kbit burst 16kb latency {latency}ms")


def start_srt_listener(port: int = SRT_PORT, record: Path | None = None) -> subprocess.Popen:
    """srt-live-transmit listening on port (1 s latency), writing what it receives to record
    (None: discarded)."""
    proc = start_receiver(f"srt://:{port}?mode=listener&latency=1000", record)
    time.sleep(0.3)
    return proc


def read_trace(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


class NetnsLink:
    """tc tbf on lo inside the namespace (inside() has set up the qdiscs)."""

    name = "netns"

    @property
    def label(self) -> str:
        return f"netns tc tbf (burst 16kb, latency {TBF_LATENCY_MS}ms)"

    def open(self, protocol: str, kbit: int) -> tuple[int, int]:
        """Shapes to kbit; returns (the server's port, the port the broadcaster pushes to)."""
        shape(kbit)
        port = RTMP_PORT if protocol == "rtmp" else SRT_PORT
        return port, port

    def set_rate(self, kbit: int) -> None:
        shape(kbit)

    def close(self) -> dict:
        return {}


class ProxyLink:
    """A throttling proxy in front of the server, one per run (tools/throttle_proxy.py)."""

    name = "proxy"
    label = ("throttling proxy (tools/throttle_proxy.py: token bucket, burst 16 kB; "
             "TCP receive window 16 kB, UDP queue 300 ms)")

    def __init__(self) -> None:
        self.proxy = None

    def open(self, protocol: str, kbit: int) -> tuple[int, int]:
        if protocol == "rtmp":
            server = free_port()
            self.proxy = throttle_proxy.ThrottlingTcpProxy(0, server, kbit)
        else:
            server = free_udp_port()
            self.proxy = throttle_proxy.ThrottlingUdpProxy(0, server, kbit, queue_ms=300)
        self.proxy.start()
        return server, self.proxy.listen_port

    def set_rate(self, kbit: int) -> None:
        self.proxy.set_rate(kbit)

    def close(self) -> dict:
        """Stops the proxy; returns its counters."""
        p, self.proxy = self.proxy, None
        if p is None:
            return {}
        p.close()
        stats = {"bytes_forwarded": p.bytes_forwarded, "dropped": p.dropped}
        if p.errors:
            stats["errors"] = p.errors[:5]
        return stats


def write_bed_scene(work: Path) -> Path:
    """The default scene with a continuous audio bed (chords over soft noise, 12 s looped).

    A silent anchor makes AAC send a few kbit/s, so the 128 kbit/s the controller keeps
    for audio would sit unused; real shows talk or play music all the time.
    """
    import numpy as np
    sr, seconds = 48000, 12
    t = np.arange(sr * seconds) / sr
    rng = np.random.default_rng(7)
    signal = 0.05 * rng.standard_normal((len(t), 2))
    for i, root in enumerate((220.0, 261.6, 196.0, 174.6)):
        seg = (t >= 3 * i) & (t < 3 * i + 3)
        for ratio in (1.0, 1.26, 1.5, 2.0):
            signal[seg, 0] += 0.08 * np.sin(2 * np.pi * root * ratio * t[seg])
            signal[seg, 1] += 0.08 * np.sin(2 * np.pi * root * ratio * 1.003 * t[seg])
    pcm = (np.clip(signal, -1, 1) * 32767).astype("<i2")
    scenes = work / "scenes"
    scenes.mkdir()
    write_wav(scenes / "bed.wav", pcm.reshape(-1), sr, channels=2)
    text = (ROOT / "scenes" / "default.yaml").read_text()
    assert "\naudio:\n  bed: silence" in text, "scenes/default.yaml changed: update write_bed_scene"
    text = text.replace("\naudio:\n  bed: silence", "\naudio:\n  bed: bed.wav\n  volume: 0.8")
    (scenes / "default.yaml").write_text(text)
    return scenes


def run_one(protocol: str, mode: str, schedule: list[tuple[int, float]], out: Path, busy: bool,
            link=None, bed: bool = True, size: str = SIZE, fps: int = FPS,
            ceiling: int = CEILING_KBPS, reconnect_at: float | None = None) -> dict:
    """One broadcast through the shaped link; returns its trace rows, capacity changes and
    what the ingest recorded (video packet times and sizes: freezes, the ingest's bitrate;
    the audio bitrate of each session). reconnect_at: restart the RTMP ingest then."""
    link = link or NetnsLink()
    work = Path(tempfile.mkdtemp(prefix=f"step-{protocol}-{mode}-"))
    trace = out / f"trace_{protocol}_{mode}.csv"
    trace.unlink(missing_ok=True)
    on = mode == "on"
    fixed = min(FIXED_KBPS, ceiling)
    cfg = write_config(
        work / "config.yaml", scenes_dir=str(write_bed_scene(work) if bed else ROOT / "scenes"),
        control={"enabled": False},
        video={"bitrate_kbps": ceiling if on else fixed, "min_bitrate_kbps": FLOOR_KBPS},
        ratecontrol={"enabled": on, "trace": str(trace), **({"start_kbps": fixed} if on else {})})
    server_port, port = link.open(protocol, schedule[0][0])
    server = proc = log = ingest = None
    srt_recording = work / "ingest.ts"
    changes = []
    recorded = None
    audio: list = []
    if reconnect_at is not None and protocol != "rtmp":
        raise SystemExit("--reconnect-at restarts nginx-rtmp: use it with --protocols rtmp")
    try:        # whatever fails, the link (proxy threads), server and broadcaster are stopped
        if protocol == "rtmp":
            ingest = NginxRtmp(work, server_port, record=True)
            ingest.start()
            server = ingest.proc
        else:
            server = start_srt_listener(server_port, srt_recording)
        url = (f"rtmp://127.0.0.1:{port}/live/steptest" if protocol == "rtmp"
               else f"srt://127.0.0.1:{port}?latency_ms=1000")
        total = sum(d for _, d in schedule)
        log = (out / f"broadcaster_{protocol}_{mode}.log").open("w")
        cmd = [sys.executable, str(Path(__file__).resolve()), "_broadcast"] + (["--busy"] if busy else []) + [
            "run", "-c", str(cfg), "--output", url, "--duration", str(total + 30),
            "--size", size, "--fps", str(fps), "--responder", "script"]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=run_env(), cwd=str(ROOT))
        # the schedule starts when the stream is on air
        wait_for(lambda: any(r["connected"] == "1" and r["send_kbps"] for r in read_trace(trace)), 60,
                 what=f"{protocol}: the broadcast to come on air (see {log.name})", proc=proc)
        t = start = time.monotonic()
        for i, (kbit, dur) in enumerate(schedule):
            if i:
                link.set_rate(kbit)
            changes.append((time.monotonic(), kbit))
            t += dur
            while (left := t - time.monotonic()) > 0:
                if reconnect_at is not None and time.monotonic() - start >= reconnect_at:
                    reconnect_at = None
                    ingest.stop()        # the broadcaster sees the ingest go, and come back
                    ingest.start()
                    server = ingest.proc
                time.sleep(min(left, 0.05))
        changes.append((time.monotonic(), None))
    finally:
        if proc is not None:
            stop(proc, signal.SIGINT, 15)
        if server is not None:
            stop(server, signal.SIGINT, timeout=10)
        link_stats = link.close()
        if log is not None:
            log.close()
        files = ingest.recordings("steptest") if ingest is not None else \
            [srt_recording] if srt_recording.exists() else []
        if files and files[-1].stat().st_size > 0:
            recorded = ingest_video(files[-1])
        audio = [ingest_audio_kbps(f) for f in files if f.stat().st_size > 0]
        shutil.rmtree(work, ignore_errors=True)
    return {"protocol": protocol, "mode": mode, "rows": read_trace(trace), "changes": changes,
            "link": link.name, "link_stats": link_stats, "fps": fps, "recorded": recorded,
            "audio_kbps_per_session": audio}


def ingest_packets(path: Path, kind: str) -> list[tuple[float, int]]:
    """(pts in seconds, bytes) of every `kind` ("video" or "audio") packet the ingest
    recorded, in pts order."""
    import av
    packets = []
    try:
        with av.open(str(path)) as container:
            for packet in container.demux(**{kind: 0}):
                if packet.pts is not None and packet.size:
                    packets.append((float(packet.pts * packet.time_base), packet.size))
    except (av.error.FFmpegError, IndexError) as exc:
        print(f"  the recording {path.name} could not be read: {exc}", flush=True)
    return sorted(packets)


def ingest_video(path: Path) -> list[tuple[float, int]]:
    """(pts in seconds, bytes) of every video packet the ingest recorded, in pts order."""
    return ingest_packets(path, "video")


def ingest_audio_kbps(path: Path) -> float | None:
    """The audio bitrate of one recorded session: its audio packets' bytes over their span."""
    packets = ingest_packets(path, "audio")
    if len(packets) < 2 or packets[-1][0] <= packets[0][0]:
        return None
    return sum(n for _, n in packets[:-1]) * 8 / 1000 / (packets[-1][0] - packets[0][0])


# -- figures ------------------------------------------------------------------------------
def capacity_at(changes, mono: float):
    cap = None
    for t, kbit in changes:
        if mono >= t:
            cap = kbit
    return cap


def series(result) -> list[dict]:
    """Trace rows inside the schedule, with t from the schedule start, capacity and media rate."""
    changes = result["changes"]
    t0, t_end = changes[0][0], changes[-1][0]
    out, prev = [], None
    for r in result["rows"]:
        mono = float(r["mono"])
        if not t0 <= mono < t_end:
            prev = r
            continue
        media = None
        if prev is not None and float(r["mono"]) > float(prev["mono"]):
            media = (int(r["bytes_out"]) - int(prev["bytes_out"])) * 8 / 1000 / (mono - float(prev["mono"]))
        prev = r
        out.append({"t": mono - t0, "capacity": capacity_at(changes, mono),
                    "send": float(r["send_kbps"]) if r["send_kbps"] else None,
                    "delay": float(r["queue_ms"]) if r["queue_ms"] else None,
                    "encoder": int(r["encoder_kbps"]), "media": media,
                    # what the encoder really makes: with every n-th frame sent it is set to n x
                    # the rate (each frame keeps its quality), and audio only makes no video
                    # (the decision's rate when traced: the encoder's setting and the divisor
                    # are applied a slot apart, which would make one-tick spikes)
                    "video": float(r["video_kbps"]) if r.get("video_kbps") else
                    0.0 if r.get("drop_video") == "1" else
                    int(r["encoder_kbps"]) / max(1, int(r.get("fps_divisor") or 1)),
                    "padding": float(r.get("padding_kbps") or 0),
                    "wire": float(r["wire_factor"]) if r.get("wire_factor") else 1.06,
                    "connected": r["connected"] == "1", "reason": r["reason"],
                    "skipped": int(r["frames_skipped"]), "dropped": int(r["frames_dropped"]),
                    "reconnects": int(r["reconnects"])})
    return out


def figures(result) -> dict:
    s = series(result)
    changes = result["changes"]
    t0 = changes[0][0]
    steps = [(t - t0, kbit, prev) for (t, kbit), (_, prev) in zip(changes[1:-1], changes[:-2])]
    ends = [t - t0 for t, _ in changes[2:]]
    down, up = [], []
    for (ts, cap, prev), te in zip(steps, ends):
        seg = [p for p in s if ts <= p["t"] < te]
        if cap < prev:
            timed = [p for p in seg if p["delay"] is not None]
            settle = yardstick.settle_time([p["t"] for p in timed], [p["delay"] for p in timed], ts,
                                           min(te, ts + yardstick.RESPONSE_S),
                                           burst_s=yardstick.BURST_S) if timed else math.inf
            down.append(None if math.isinf(settle) else settle)
        else:
            up.append(next((p["t"] - ts for p in seg if p["send"] and p["send"] >= 0.9 * cap), None))
    delays = [p["delay"] for p in s if p["delay"] is not None]
    util = [min(p["send"], p["capacity"]) / p["capacity"] for p in s if p["send"] is not None]
    steady = [p for p in s if all(not (ts <= p["t"] < ts + yardstick.RESPONSE_S) for ts, _, _ in steps)
              and p["t"] >= yardstick.RESPONSE_S]
    minutes = len(steady) * _tick(s) / 60.0
    # the steady-state utilisation: the same points the oscillations are counted on
    steady_util = [min(p["send"], p["capacity"]) / p["capacity"] for p in steady if p["send"] is not None]
    last = s[-1] if s else {"skipped": 0, "dropped": 0, "reconnects": 0}
    first = s[0] if s else last
    return {
        "settle_after_down_s": down, "reach_90pct_after_up_s": up,
        "peak_delay_ms": yardstick.peak_delay([p["t"] for p in s if p["delay"] is not None], delays,
                                              -math.inf, math.inf) if delays else None,
        "utilisation": sum(util) / len(util) if util else None,
        "utilisation_steady": (sum(steady_util) / len(steady_util)) if steady_util else None,
        # share of the capacity that probes filled with padding (counted in both figures)
        "padding_share_steady": (sum(p["padding"] for p in steady) / sum(p["capacity"] for p in steady))
        if steady else None,
        # counted within each steady stretch: the move from one capacity to the next is
        # the response to the step, not an oscillation
        "oscillations_per_min": sum(_oscillations(steady, a, b)
                                    for a, b in _stretches(steps, s)) / minutes if minutes > 0 else None,
        "frames_skipped": last["skipped"] - first["skipped"],
        "frames_dropped": last["dropped"] - first["dropped"],
        "reconnects": last["reconnects"] - first["reconnects"],
        "offline_ticks": sum(not p["connected"] for p in s),
        "audio_kbps_per_session": result.get("audio_kbps_per_session", []),
        **ingest_figures(result, steps),
    }



def ingest_figures(result, steps) -> dict:
    """What the ingest recorded, around each capacity step: the worst picture freeze (largest
    gap between video timestamps from 2 s before the step on), how long until the ingest's
    video bitrate (1 s windows, by timestamp) was under the new capacity, and until it was
    back to half of (capacity - audio). None where nothing was recorded."""
    packets = result.get("recorded")
    if not packets:
        return {"worst_freeze_s": None, "freeze_after_step_s": [], "ingest_under_capacity_s": [],
                "ingest_half_share_s": []}
    pts_at = _pts_clock(result)
    freezes, under, half = [], [], []
    for ts, cap, prev in steps:
        start = pts_at(ts)
        times = [t for t, _ in packets if t >= start - 2.0]
        gaps = [b - a for a, b in zip(times, times[1:])]
        freezes.append(max(gaps) if gaps else None)
        if cap < prev:
            rates = [(w - start, kbps) for w, kbps in _windowed_kbps(packets, start, start + 12.0)]
            fits = next((w for w, k in rates if k <= cap), None)
            under.append(fits)
            # (from then on: what was queued before the step is no share of the new link)
            half.append(None if fits is None else next(
                (w for w, k in rates if w >= fits and k >= 0.5 * (cap - AUDIO_KBPS)), None))
    times = [t for t, _ in packets]
    worst = max((b - a for a, b in zip(times, times[1:])), default=None)
    return {"worst_freeze_s": worst, "freeze_after_step_s": freezes,
            "ingest_under_capacity_s": under, "ingest_half_share_s": half}


def _pts_clock(result):
    """Schedule time -> media timestamp: the slots the publisher had written by then (one per
    frame period, sent or skipped) over the frame rate."""
    t0 = result["changes"][0][0]
    marks = [(float(r["mono"]) - t0, int(r["frames_out"]) / result["fps"]) for r in result["rows"]]

    def pts_at(t: float) -> float:
        before = [m for m in marks if m[0] <= t]
        return before[-1][1] if before else 0.0
    return pts_at


def _windowed_kbps(packets, start: float, end: float, window: float = 1.0, step: float = 0.25):
    """(window start, kbit/s of video in [w, w + window)) for w from start to end."""
    out, w = [], start
    while w < end:
        size = sum(n for t, n in packets if w <= t < w + window)
        out.append((w, size * 8 / 1000 / window))
        w += step
    return out


def _tick(s) -> float:
    return (s[-1]["t"] - s[0]["t"]) / max(1, len(s) - 1) if len(s) > 1 else 0.1


def _stretches(steps, s) -> list[tuple[float, float]]:
    """(start, end) of the stretches between capacity steps."""
    bounds = [0.0] + [ts for ts, _, _ in steps] + [s[-1]["t"] + 1.0 if s else 0.0]
    return list(zip(bounds, bounds[1:]))


def _oscillations(points, a: float, b: float) -> int:
    """yardstick.oscillations of the decided video rate plus audio, with the measured overhead."""
    return yardstick.oscillations([p["t"] for p in points],
                                  [(p["video"] + AUDIO_KBPS) * p["wire"] / p["capacity"] for p in points],
                                  a, b)


def fmt_list(values) -> str:
    return "[" + ", ".join("never" if v is None else f"{v:.1f}" for v in values) + "]"


def report(results) -> str:
    lines = [f"{'run':<12}{'settle<200ms after down (s)':<30}{'90% after up (s)':<18}{'peak delay':>11}"
             f"{'util':>7}{'steady':>8}{'osc/min':>9}{'skipped':>9}{'dropped':>9}{'reconn':>8}"
             f"  {'freeze after step (s)':<24}{'ingest<cap (s)':<16}{'ingest>=50% (s)':<16}"]
    for r in results:
        f = r["figures"]
        peak = "-" if f["peak_delay_ms"] is None else f"{f['peak_delay_ms']:.0f} ms"
        util = "-" if f["utilisation"] is None else f"{100 * f['utilisation']:.0f} %"
        osc = "-" if f["oscillations_per_min"] is None else f"{f['oscillations_per_min']:.1f}"
        steady = "-" if f["utilisation_steady"] is None else f"{100 * f['utilisation_steady']:.0f} %"
        lines.append(f"{r['protocol'] + ' ' + ('ctl' if r['mode'] == 'on' else 'fixed'):<12}"
                     f"{fmt_list(f['settle_after_down_s']):<30}{fmt_list(f['reach_90pct_after_up_s']):<18}"
                     f"{peak:>11}{util:>7}{steady:>8}{osc:>9}{f['frames_skipped']:>9}{f['frames_dropped']:>9}"
                     f"{f['reconnects']:>8}  {fmt_list(f['freeze_after_step_s']):<24}"
                     f"{fmt_list(f['ingest_under_capacity_s']):<16}{fmt_list(f['ingest_half_share_s']):<16}")
    return "\n".join(lines)


def write_outputs(results, out: Path) -> None:
    with (out / "step_test.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["protocol", "mode", "t_s", "capacity_kbps", "encoder_kbps", "media_kbps",
                    "send_kbps", "queue_delay_ms", "connected", "reason", "video_kbps",
                    "padding_kbps"])
        for r in results:
            for p in series(r):
                w.writerow([r["protocol"], r["mode"], f"{p['t']:.2f}", p["capacity"], p["encoder"],
                            "" if p["media"] is None else f"{p['media']:.0f}",
                            "" if p["send"] is None else f"{p['send']:.0f}",
                            "" if p["delay"] is None else f"{p['delay']:.0f}", int(p["connected"]),
                            p["reason"], f"{p['video']:.0f}", f"{p['padding']:.0f}"])
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(results), 1, figsize=(11, 3.2 * len(results)), sharex=True,
                             squeeze=False)
    for ax, r in zip(axes[:, 0], results):
        s = series(r)
        t = [p["t"] for p in s]
        ax.step(t, [p["capacity"] for p in s], where="post", color="black", lw=1.5, label="capacity")
        ax.plot(t, [p["video"] for p in s], color="tab:blue", label="video bitrate (encoder)")
        ax.fill_between(t, 0, [p["padding"] for p in s], color="tab:orange", alpha=0.4, lw=0,
                        label="probe padding")
        ax.plot(t, [p["send"] if p["send"] is not None else math.nan for p in s], color="tab:green",
                label="send rate (acked)")
        ax.set_ylabel("kbit/s")
        ax.set_ylim(0, max(p["capacity"] or 0 for p in s) * 1.1 if s else CEILING_KBPS)
        ax2 = ax.twinx()
        ax2.plot(t, [p["delay"] if p["delay"] is not None else math.nan for p in s], color="tab:red",
                 lw=0.8, label="queueing delay")
        ax2.axhline(yardstick.SETTLED_MS, color="tab:red", ls=":", lw=0.8)
        ax2.set_ylabel("delay ms", color="tab:red")
        ax2.set_yscale("symlog", linthresh=100)
        ax.set_title(f"{r['protocol'].upper()} - {'rate control' if r['mode'] == 'on' else 'fixed bitrate (baseline)'}")
        if ax is axes[0, 0]:
            h1, l1 = ax.get_legend_handles_labels()
            h2, l2 = ax2.get_legend_handles_labels()
            ax.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("seconds since the schedule started")
    fig.tight_layout()
    fig.savefig(out / "step_test.png", dpi=90)
    plt.close(fig)


def parse_schedule(text: str) -> list[tuple[int, float]]:
    steps = []
    for part in text.split(","):
        kbit, _, dur = part.partition(":")
        steps.append((int(kbit), float(dur)))
    return steps


def inside(args) -> int:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    global TBF_LATENCY_MS
    TBF_LATENCY_MS = args.tbf_latency_ms
    sh("ip link set lo up && ip link set lo mtu 1500")
    schedule = parse_schedule(args.schedule)
    shape(schedule[0][0], first=True)
    return run_all(args, out, schedule, NetnsLink())


def run_all(args, out: Path, schedule, link) -> int:
    results = []
    for protocol in args.protocols.split(","):
        for mode in args.modes.split(","):
            print(f"step test: {protocol} with rate control {mode} ...", flush=True)
            r = run_one(protocol, mode, schedule, out, busy=not args.no_busy_picture, link=link,
                        bed=not args.silent, size=args.size, fps=args.fps, ceiling=args.ceiling,
                        reconnect_at=args.reconnect_at)
            r["figures"] = figures(r)
            results.append(r)
            if r["link_stats"]:
                print(f"  proxy: {r['link_stats']}", flush=True)
    write_outputs(results, out)
    for r in results:
        if r["recorded"]:
            with (out / f"ingest_{r['protocol']}_{r['mode']}.csv").open("w", newline="") as fh:
                csv.writer(fh).writerows([("pts_s", "bytes")] + r["recorded"])
    (out / "figures.json").write_text(json.dumps(
        [{"protocol": r["protocol"], "mode": r["mode"], "link": r["link"], **r["figures"],
          **({"link_stats": r["link_stats"]} if r["link_stats"] else {})} for r in results],
        indent=1))
    print(f"schedule (kbit/s:s): {args.schedule}; ceiling {args.ceiling} kbit/s with rate control, "
          f"fixed {min(FIXED_KBPS, args.ceiling)} kbit/s without; {args.size}@{args.fps}; "
          f"audio bed {'off (silent anchor)' if args.silent else 'on'}")
    print(f"link: {link.label}")
    print(report(results))
    for r in results:
        if args.reconnect_at is not None:
            print(f"{r['protocol']} {r['mode']}: audio per recorded session (kbit/s): "
                  + fmt_list(r["figures"]["audio_kbps_per_session"]))
    print(f"wrote {out / 'step_test.csv'}, {out / 'step_test.png'}, {out / 'figures.json'}")
    return 0


def broadcast(argv: list[str]) -> int:
    """`broadcaster run`, optionally with a moving noise band so the encoder can fill the link."""
    if argv and argv[0] == "--busy":
        argv = argv[1:]
        import numpy as np

        from broadcaster.render import compose
        original = compose.Compositor.compose
        rng = np.random.default_rng(1)

        def busy(self, *args, **kwargs):
            frame = original(self, *args, **kwargs).copy()
            h = self.scene.canvas.height
            band = frame[h // 2:h]
            band[:] = 90 + rng.integers(0, 48, size=band.shape, dtype=np.uint8)
            return frame
        compose.Compositor.compose = busy
    from broadcaster.cli import main
    return main(argv)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_broadcast":
        return broadcast(sys.argv[2:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--short", action="store_true", help=f"short schedule {SHORT_SCHEDULE}")
    p.add_argument("--schedule", help=f"kbit:seconds,... (default {DEFAULT_SCHEDULE})")
    p.add_argument("--protocols", default="rtmp,srt")
    p.add_argument("--modes", default="on,off", help="on = rate control, off = fixed bitrate")
    p.add_argument("--out", default="step-test-out")
    p.add_argument("--no-busy-picture", action="store_true")
    p.add_argument("--silent", action="store_true",
                   help="no audio bed: AAC then sends a few kbit/s of the 128 kept for audio")
    p.add_argument("--narrow", action="store_true",
                   help=f"the issue-13 case: {NARROW_SIZE}@{NARROW_FPS}, ceiling "
                        f"{NARROW_CEILING_KBPS}, schedule {NARROW_SCHEDULE} (--short: "
                        f"{NARROW_SHORT_SCHEDULE}), tbf latency 2000 ms")
    p.add_argument("--size", help=f"WxH (default {SIZE})")
    p.add_argument("--fps", type=int, help=f"default {FPS}")
    p.add_argument("--ceiling", type=int, help=f"video ceiling, kbit/s (default {CEILING_KBPS})")
    p.add_argument("--tbf-latency-ms", type=int, help=f"netns tbf latency (default {TBF_LATENCY_MS})")
    p.add_argument("--link", choices=("auto", "netns", "proxy"), default="auto",
                   help="netns: tc tbf in a network namespace (root); proxy: throttling "
                        "TCP/UDP proxies on loopback (no root); auto: netns if possible")
    p.add_argument("--reconnect-at", type=float,
                   help="RTMP: restart the ingest this many s into the schedule (a reconnect)")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.narrow:
        args.schedule = args.schedule or (NARROW_SHORT_SCHEDULE if args.short else NARROW_SCHEDULE)
        args.size, args.fps = args.size or NARROW_SIZE, args.fps or NARROW_FPS
        args.ceiling = args.ceiling or NARROW_CEILING_KBPS
        args.tbf_latency_ms = args.tbf_latency_ms or 2000
    args.schedule = args.schedule or (SHORT_SCHEDULE if args.short else DEFAULT_SCHEDULE)
    args.size, args.fps = args.size or SIZE, args.fps or FPS
    args.ceiling = args.ceiling or CEILING_KBPS
    args.tbf_latency_ms = args.tbf_latency_ms or TBF_LATENCY_MS
    if args.inside:
        return inside(args)
    link = args.link
    if link != "proxy":
        why = namespace_unavailable()
        if why and link == "netns":
            print(f"step test not run: {why} (--link proxy needs no namespace)", file=sys.stderr)
            return 2
        if why:
            print(f"no network namespace ({why}): shaping with the throttling proxy", flush=True)
            link = "proxy"
    if link == "proxy":
        why = servers_unavailable()
        if why:
            print(f"step test not run: {why}", file=sys.stderr)
            return 2
        out = Path(args.out).resolve()
        out.mkdir(parents=True, exist_ok=True)
        return run_all(args, out, parse_schedule(args.schedule), ProxyLink())
    return subprocess.call(["unshare", "-n", sys.executable, str(Path(__file__).resolve()),
                            "--inside"] + sys.argv[1:])


def servers_unavailable() -> str | None:
    """None when nginx-rtmp and srt-live-transmit are installed, else what is missing."""
    if SLT is None:
        return "srt-live-transmit is not installed"
    return NginxRtmp.missing()


def netns_unavailable() -> str | None:
    """None when `unshare -n` and tc shaping work here, else the reason."""
    for tool in ("unshare", "tc", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(["unshare", "-n", "sh", "-c",
                            "ip link set lo up && tc qdisc add dev lo root tbf rate 1mbit burst 16kb latency 100ms"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make a network namespace with tc shaping ({probe.stderr.strip() or 'not root?'})"
    return None


def namespace_unavailable() -> str | None:
    """None when the step test can run in a namespace here (servers installed, tc works)."""
    return servers_unavailable() or netns_unavailable()


if __name__ == "__main__":
    sys.exit(main())
