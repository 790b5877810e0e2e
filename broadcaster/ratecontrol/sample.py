"""LinkSample: one measurement of the upstream link, what every link meter produces and
the controller consumes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinkSample:
    """One measurement of the upstream link, taken at `now` (seconds, monotonic)."""

    now: float
    send_rate_kbps: float       # measured drain: bytes the link actually carried, smoothed
    queue_delay_ms: float       # queued-but-undelivered data, in ms at the drain rate
    rtt_ms: float | None = None
    lost_packets: int = 0       # losses/retransmissions since the previous sample
    dropped_packets: int = 0    # sender-side drops since the previous sample (data never sent)
    busy_rate_kbps: float | None = None  # drain measured only while a queue stood: the
                                         # link's capacity (None: not measurable this tick)
    recent_rate_kbps: float | None = None  # the drain over the last ~0.2 s (send_rate_kbps's
                                           # window lags a narrowing link)
    wire_factor: float | None = None     # bytes on the link per byte the encoder wrote
                                         # (container + transport overhead), measured
    offered_kbps: float | None = None    # what the encoder wrote over the same window, without
                                         # container or transport overhead (None: unknown);
                                         # an encoder making less than its target
                                         # (silence, a still picture, audio only) is not a
                                         # link that fails to carry it
