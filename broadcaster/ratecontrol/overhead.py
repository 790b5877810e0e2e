"""The container and transport overhead: bytes on the link per byte the encoder wrote, less one.

Every rate the controller compares is a link rate, so the encoder's bytes count with this
overhead added (MPEG-TS over SRT carries 15-30 % more than the encoder writes, FLV over TCP
about what it writes). The configured `overhead` stands until LinkSample.wire_factor measures it.
"""

from __future__ import annotations

MAX_OVERHEAD = 0.8        # a measured wire factor above 1.8 is a glitch, not a container
MIN_WIRE_FACTOR = 0.9     # (under 1 is FLV sending SPS/PPS once: counted as no overhead)
OVERHEAD_GAIN = 0.1       # per sample: the measured overhead is followed within ~1 s


class WireOverhead:
    """The overhead in use (a share, e.g. 0.06), smoothed over the wire factors measured."""

    def __init__(self, initial: float) -> None:
        self.value = initial

    def observe(self, wire_factor: float | None) -> None:
        # (smoothed: the factor moves with the audio's share of the stream)
        if wire_factor is not None and MIN_WIRE_FACTOR <= wire_factor <= 1.0 + MAX_OVERHEAD:
            self.value += OVERHEAD_GAIN * (max(0.0, wire_factor - 1.0) - self.value)
