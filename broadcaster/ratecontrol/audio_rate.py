"""The audio bitrate a new output session opens at: lower on a link measured to be narrow.

AAC's bitrate is fixed when the encoder opens, so it is chosen at each (re)connect, from the
capacity the rate controller knows then. On a narrow link 128 kbit/s of audio takes a large
share of what the picture could have: at 400 kbit/s, 64 kbit/s of AAC-LC stereo leaves the
picture about 30 % more. So audio takes at most `MAX_AUDIO_SHARE` of what the link carries
at the controller's margin, stepping down a ladder of AAC-LC rates that still sound clean
for speech and music, never above the configured rate. With no capacity known (the first
connection) it is the configured rate. Pure: the capacity in, a bitrate out.
"""

from __future__ import annotations

LADDER_KBPS = (128, 96, 64)     # AAC-LC stereo steps below the configured rate
MAX_AUDIO_SHARE = 0.25          # audio takes at most this share of the usable link


def audio_kbps_for(configured_kbps: int, capacity_kbps: float | None, *, margin: float,
                   overhead: float) -> int:
    """The audio bitrate (kbit/s) for a session opened on a link of capacity_kbps (link
    kbps, None: not measured); margin and overhead as the rate controller uses them."""
    if capacity_kbps is None or capacity_kbps <= 0:
        return configured_kbps
    usable = margin * capacity_kbps / (1 + overhead)
    steps = [configured_kbps] + [k for k in LADDER_KBPS if k < configured_kbps]
    for kbps in steps:
        if kbps <= MAX_AUDIO_SHARE * usable:
            return kbps
    return steps[-1]
