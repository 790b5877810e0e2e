"""SRT link meter: successive libsrt statistics -> LinkSamples."""

from __future__ import annotations

from broadcaster.ratecontrol.burst import BurstCompensator
from broadcaster.ratecontrol.rates import WindowedCounters
from broadcaster.ratecontrol.sample import LinkSample
from broadcaster.transport import libsrt
from broadcaster.transport.libsrt import SrtStats


class SrtLinkMeter:
    """Turns successive SrtSink.stats() readings into LinkSamples for the rate controller.

    Call sample(now, sink.stats(), sink.bytes_written, sink.bytes_handed) once per tick.
    Drain = bytes acknowledged per second (bytes handed to libsrt, minus the growth of its
    send buffer, minus sender drops), over a `window_s` window. (libsrt's buffer also holds
    packets it has not sent yet: when the bottleneck is the sender's own interface they
    wait there, so "unique bytes sent minus buffer growth" reads low while the queue grows
    and high while it drains. It is the fallback without bytes_handed.)
    Queueing delay = unacknowledged bytes that are not simply "just written" (since the
    previous sample) nor one RTT + ACK period in flight, divided by the drain. This jumps
    once per keyframe burst and falls, while real overload makes it climb tick after tick.
    (msSndBuf, the head packet's wait, climbs in both cases, so it is only the fallback
    when bytes_written is not given.)
    Keyframe bursts are then discounted (BurstCompensator): the controller should react to
    a narrowing link, not to the GOP structure.
    Busy rate = the acknowledged rate while such a (raw) queue stood without a break: the
    path's capacity (not measured over intervals with retransmissions or drops, where
    the acknowledged rate falls short of what the path carried). Sender drops (too-late
    packets) are passed on as dropped_packets, which the controller treats as overuse.
    """

    BUSY_QUEUE_MS = 30.0

    def __init__(self, window_s: float = 0.5, min_busy_s: float = 0.4) -> None:
        self._window = window_s
        self._min_busy = min_busy_s
        self._hist = WindowedCounters(window_s)      # (now, bytes acknowledged)
        self._busy_since: tuple[float, int] | None = None   # (now, bytes carried)
        self._acked = 0
        self._prev: SrtStats | None = None
        self._prev_written: int | None = None
        self._prev_handed: int | None = None
        self._min_rtt: float | None = None
        self._bursts = BurstCompensator()

    def sample(self, now: float, stats: SrtStats, bytes_written: int | None = None,
               bytes_handed: int | None = None) -> LinkSample | None:
        """A LinkSample from this reading, or None for the first one (no interval yet)."""
        prev = self._prev
        self._prev = stats
        prev_handed, self._prev_handed = self._prev_handed, bytes_handed
        fresh = None
        if bytes_written is not None:
            if self._prev_written is not None:
                fresh = max(0, bytes_written - self._prev_written)
                self._bursts.written(now, fresh)
            self._prev_written = bytes_written
        if stats.rtt_ms > 0:
            self._min_rtt = stats.rtt_ms if self._min_rtt is None else min(self._min_rtt, stats.rtt_ms)
        if prev is not None:
            if bytes_handed is not None and prev_handed is not None:
                # (libsrt counts its buffer with a 44-byte header per packet: count so too)
                entered = libsrt.with_packet_headers(bytes_handed - prev_handed)
            else:
                entered = stats.byte_sent_unique_total - prev.byte_sent_unique_total
            acked = max(0, int(entered - (stats.snd_buf_bytes - prev.snd_buf_bytes)
                               - (stats.byte_snd_drop_total - prev.byte_snd_drop_total)))
            self._acked += acked
        t0, a0 = self._hist.add(now, self._acked)
        if prev is None or now <= t0:
            return None
        drain_kbps = (self._acked - a0) * 8 / (now - t0) / 1000.0
        drain_bps = max(drain_kbps * 1000 / 8, 1000.0)
        base_ms = (self._min_rtt or 0.0) + 10.0          # one RTT + the 10 ms ACK period
        if fresh is not None:
            waiting = stats.snd_buf_bytes - fresh - drain_bps * base_ms / 1000.0
            queue_ms = max(0.0, waiting) / drain_bps * 1000.0
            # No byte has waited longer than the head packet: when losses stall the
            # drain, bytes / drain overstates the delay, the head's age does not.
            queue_ms = min(queue_ms, max(0.0, stats.snd_buf_ms - base_ms))
        else:
            queue_ms = max(0.0, stats.snd_buf_ms - base_ms)
        busy = None
        raw_queue_ms = queue_ms
        queue_ms = max(0.0, queue_ms - self._bursts.residual_ms(now, drain_bps, raw_queue_ms))
        lossy = stats.pkt_retrans > 0 or stats.pkt_snd_drop > 0   # goodput < capacity then
        if raw_queue_ms > self.BUSY_QUEUE_MS and not lossy:
            if self._busy_since is None:
                self._busy_since = (now, self._acked)
            bt, bc = self._busy_since
            if now - bt > self._window:                 # use the recent part of a long run
                bt, bc = t0, a0    # (the rate window: its bytes are what was acked since t0)
            if now - bt >= self._min_busy and self._acked > bc:
                busy = (self._acked - bc) * 8 / (now - bt) / 1000.0
        else:
            self._busy_since = None
        return LinkSample(
            now=now, send_rate_kbps=drain_kbps, queue_delay_ms=queue_ms,
            rtt_ms=stats.rtt_ms, lost_packets=stats.pkt_snd_loss,
            dropped_packets=stats.pkt_snd_drop, busy_rate_kbps=busy,
            recent_rate_kbps=self._hist.recent_kbps(now))
