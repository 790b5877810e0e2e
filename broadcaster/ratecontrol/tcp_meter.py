"""TCP link meter (RTMP): successive TCP_INFO readings -> LinkSamples."""

from __future__ import annotations

from broadcaster.ratecontrol.burst import BurstCompensator
from broadcaster.ratecontrol.rates import WindowedCounters
from broadcaster.ratecontrol.sample import LinkSample
from broadcaster.transport.tcpinfo import TcpInfo


class TcpLinkMeter:
    """Successive TcpInfo readings -> LinkSamples for the rate controller.

    ACKs arrive in lumps (delayed ACKs, receive-window updates), so rates are taken over a
    sliding window of `window_s`, not per tick:
    drain = bytes acknowledged per second over the window (what the path carried);
    queueing delay = unsent bytes / drain + RTT above the path's minimum (a queue at a
    bottleneck router shows up as RTT growth, not as unsent bytes);
    keyframe bursts (a tick's writes over twice the recent median) are discounted from that
    delay until they could have drained (BurstCompensator);
    busy rate = the acknowledged rate since unsent data has been waiting without a break
    (at least `min_busy_s` of it): the sender never ran dry, so that is the path's capacity.
    """

    def __init__(self, window_s: float = 0.5, min_busy_s: float = 0.4) -> None:
        self._window = window_s
        self._min_busy = min_busy_s
        self._hist = WindowedCounters(window_s)     # (now, bytes_acked)
        self._busy_since: tuple[float, int] | None = None   # first reading of the busy run
        self._prev: TcpInfo | None = None
        self._bursts = BurstCompensator()

    def sample(self, now: float, info: TcpInfo) -> LinkSample | None:
        """A LinkSample from this reading, or None for the first one (no interval yet)."""
        prev = self._prev
        self._prev = info
        if prev is not None:   # what the application wrote: new unique bytes sent + unsent growth
            written = info.bytes_written - prev.bytes_written
            self._bursts.written(now, max(0, written))
        if info.notsent_bytes > 0:
            if self._busy_since is None or (prev is not None and info.total_retrans > prev.total_retrans):
                # (after a loss the cumulative ACK jumps when the hole is filled: an interval
                # with retransmissions reads far above the capacity, so start afresh)
                self._busy_since = (now, info.bytes_acked)
        else:
            self._busy_since = None
        t0, a0 = self._hist.add(now, info.bytes_acked)
        if prev is None or now <= t0:
            return None
        drain_kbps = max(0, info.bytes_acked - a0) * 8 / (now - t0) / 1000.0
        busy = None
        if self._busy_since is not None:
            bt, ba = self._busy_since
            if now - bt > self._window:          # use the recent part of a long busy run
                bt, ba = t0, a0
            if now - bt >= self._min_busy and info.bytes_acked > ba:
                busy = (info.bytes_acked - ba) * 8 / (now - bt) / 1000.0
        # Early on (or when idle) the acked rate says little: fall back to the kernel's rate.
        drain_bps = max(drain_kbps * 1000 / 8, float(info.delivery_rate) if drain_kbps == 0 else 0.0,
                        1000.0)
        standing_rtt = max(0.0, info.rtt_ms - info.min_rtt_ms) if info.min_rtt_ms > 0 else 0.0
        if info.unacked_segments == 0 and info.notsent_bytes == 0:
            standing_rtt = 0.0   # nothing of ours in flight: the RTT is a stale sample, no queue
        delay = info.notsent_bytes / drain_bps * 1000.0 + standing_rtt
        # Keyframe bursts are discounted: the controller should follow the link, not the GOP.
        delay = max(0.0, delay - self._bursts.residual_ms(now, drain_bps, delay))
        return LinkSample(now=now, send_rate_kbps=drain_kbps, queue_delay_ms=delay,
                          rtt_ms=info.rtt_ms, busy_rate_kbps=busy,
                          recent_rate_kbps=self._hist.recent_kbps(now),
                          lost_packets=max(0, info.total_retrans - prev.total_retrans))
