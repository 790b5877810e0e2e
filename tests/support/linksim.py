"""A small fluid-queue link simulator to drive the rate controller with plain numbers.

The encoder follows its bitrate with the lag measured for in-process libx264 ultrafast
(0.1-0.25 s: pure delay 0.1 s plus a 0.1 s first-order lag), emits an I-frame 5x a P-frame
every 2 s, and jitters frame sizes (lognormal, sigma 0.15); a probe's padding is added to
the next frames at once. Audio is 128 kbit/s, container
overhead 6 %. The sender queue drains at the scheduled capacity; the meter reports the
drain rate (0.25 s EWMA) and queue delay = queued bits / drain rate, as the TCP_INFO and
SRT meters do.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Callable

from broadcaster.ratecontrol.controller import RateControlConfig, RateController
from broadcaster.ratecontrol.sample import LinkSample
from tests.support import yardstick

FPS = 20
GOP = 40
I_FACTOR = 5.0
ENC_DELAY_S = 0.1
ENC_TAU_S = 0.1
AUDIO_KBPS, OVERHEAD = 128.0, 0.06      # (the oscillation count's link rate)


@dataclass
class Trace:
    t: list = field(default_factory=list)
    capacity: list = field(default_factory=list)     # link kbps
    video_kbps: list = field(default_factory=list)   # encoder bitrate setting
    sent_kbps: list = field(default_factory=list)    # delivered link kbps (instantaneous)
    delay_ms: list = field(default_factory=list)     # true queueing delay
    fps_divisor: list = field(default_factory=list)
    padding_kbps: list = field(default_factory=list)  # a probe's filler
    picture: list = field(default_factory=list)      # a picture was sent at this frame
    frames_dropped: int = 0


def simulate(schedule: Callable[[float], float], duration_s: float,
             controller: RateController | None, *, fixed_video_kbps: float | None = None,
             config: RateControlConfig | None = None, seed: int = 1,
             jitter: float = 0.15, audio_sent_kbps: float | None = None) -> Trace:
    """Run the link for duration_s; controller None means a fixed bitrate (the baseline).

    audio_sent_kbps: what the audio really makes (a silent anchor: a few kbit/s) where it
    is not the budgeted config.audio_kbps; the meter then also reports what the encoder
    wrote (offered_kbps, over 0.5 s), as the link monitor does.
    """
    cfg = controller.config if controller else config
    assert cfg is not None
    rng = random.Random(seed)
    dt = 1.0 / FPS
    video = fixed_video_kbps if controller is None else (cfg.start_kbps or cfg.ceiling_kbps)
    pending: list[tuple[float, float]] = []    # (apply_at, video kbps) for the encoder's lag
    enc_rate = video
    queue_bits = 0.0
    drain_kbps = 0.0
    divisor = 1
    padding = 0.0
    last_busy, busy_kbps = -math.inf, 0.0
    tr = Trace()
    p_share = GOP / (GOP - 1 + I_FACTOR)
    audio_kbps = cfg.audio_kbps if audio_sent_kbps is None else audio_sent_kbps
    written: list[float] = []                  # bits the encoder wrote per frame, last 0.5 s
    for n in range(int(duration_s * FPS)):
        now = n * dt
        cap = schedule(now)
        # encoder output this frame
        while pending and pending[0][0] <= now:
            video = pending.pop(0)[1]
        enc_rate += (video - enc_rate) * (1 - math.exp(-dt / ENC_TAU_S))
        frame_bits = 0.0
        if n % divisor == 0:
            shape = I_FACTOR if n % GOP == 0 else 1.0
            frame_bits = enc_rate * 1000 / FPS * p_share * shape * rng.lognormvariate(0, jitter)
            frame_bits *= 1 + 0.3 * (divisor - 1)     # x264 partly re-spends skipped frames
            frame_bits += padding * 1000 / FPS          # a probe's filler rides on the frame
        else:
            tr.frames_dropped += 1
        audio_bits = audio_kbps * 1000 / FPS
        queue_bits += (frame_bits + audio_bits) * (1 + cfg.overhead)
        written = (written + [frame_bits + audio_bits])[-FPS // 2:]
        sent = min(queue_bits, cap * 1000 * dt)
        queue_bits -= sent
        inst = sent / dt / 1000
        drain_kbps += (inst - drain_kbps) * (1 - math.exp(-dt / 0.25))
        busy = None
        if queue_bits > 0:                      # the link never idled during this tick
            busy_kbps = inst if now - last_busy > 0.5 else busy_kbps + (inst - busy_kbps) * 0.5
            last_busy = now
            busy = busy_kbps
        delay = queue_bits / max(drain_kbps * 1000, 1.0) * 1000 if queue_bits > 0 else 0.0
        if controller is not None:
            offered = (sum(written) / len(written) * FPS / 1000
                       if audio_sent_kbps is not None else None)
            dec = controller.update(LinkSample(now=now, send_rate_kbps=drain_kbps,
                                               queue_delay_ms=delay, rtt_ms=40.0,
                                               busy_rate_kbps=busy, offered_kbps=offered))
            pending.append((now + ENC_DELAY_S, float(dec.video_kbps)))
            divisor = dec.fps_divisor if not dec.drop_video else 10**9
            padding = float(dec.padding_kbps)
        tr.t.append(now)
        tr.capacity.append(cap)
        tr.video_kbps.append(pending[-1][1] if pending else video)
        tr.sent_kbps.append(inst)
        tr.delay_ms.append(queue_bits / (cap * 1000) * 1000)
        tr.fps_divisor.append(divisor)
        tr.padding_kbps.append(padding)
        tr.picture.append(frame_bits > 0)
    return tr


def steps(*segments: tuple[float, float]) -> Callable[[float], float]:
    """Capacity schedule from (start_s, link_kbps) pairs."""
    segs = sorted(segments)

    def cap(t: float) -> float:
        value = segs[0][1]
        for start, kbps in segs:
            if t >= start:
                value = kbps
        return value
    return cap


def _window(tr: Trace, a: float, b: float) -> range:
    idx = [i for i, t in enumerate(tr.t) if a <= t < b]
    return range(idx[0], idx[-1] + 1)


def settle_time(tr: Trace, step_at: float, until: float, limit_ms: float = yardstick.SETTLED_MS,
                burst_s: float = 0.0) -> float:
    """yardstick.settle_time of the true queueing delay."""
    return yardstick.settle_time(tr.t, tr.delay_ms, step_at, until, limit_ms, burst_s)


def worst_freeze(tr: Trace, a: float, b: float) -> float:
    """yardstick.worst_freeze of the pictures sent."""
    return yardstick.worst_freeze([t for t, p in zip(tr.t, tr.picture) if p], a, b)


def peak_delay(tr: Trace, a: float, b: float) -> float:
    return yardstick.peak_delay(tr.t, tr.delay_ms, a, b)


def smoothed_sent(tr: Trace, i: int, span_s: float = 1.0) -> float:
    k = max(1, int(span_s * FPS))
    lo = max(0, i - k + 1)
    return sum(tr.sent_kbps[lo:i + 1]) / (i + 1 - lo)


def time_to_fraction(tr: Trace, step_at: float, until: float, fraction: float = 0.9) -> float:
    """Seconds after step_at until the 1 s mean delivered rate reaches fraction x capacity."""
    for i in _window(tr, step_at, until):
        if smoothed_sent(tr, i) >= fraction * tr.capacity[i]:
            return tr.t[i] - step_at
    return math.inf


def utilisation(tr: Trace, a: float, b: float) -> float:
    w = _window(tr, a, b)
    return sum(tr.sent_kbps[i] for i in w) / sum(tr.capacity[i] for i in w)


def oscillations(tr: Trace, a: float, b: float, high: float = yardstick.HIGH_SHARE,
                 low: float = yardstick.LOW_SHARE) -> int:
    """yardstick.oscillations of the encoder's link rate (video + audio, with overhead)."""
    shares = [(v + AUDIO_KBPS) * (1 + OVERHEAD) / c for v, c in zip(tr.video_kbps, tr.capacity)]
    return yardstick.oscillations(tr.t, shares, a, b, high, low)


def cuts(tr: Trace, a: float, b: float, min_drop: float = 0.05) -> int:
    """Bitrate decreases of at least min_drop (fraction), counted once per decrease run."""
    w = list(_window(tr, a, b))
    count, falling = 0, False
    for i, j in zip(w, w[1:]):
        if tr.video_kbps[j] < tr.video_kbps[i] * (1 - min_drop) and not falling:
            count += 1
            falling = True
        elif tr.video_kbps[j] >= tr.video_kbps[i]:
            falling = False
    return count
