"""When to try the ingest again, as a pure policy: the backoff, plus a cheap TCP check while
the ingest is known to be absent.

An ingest that refuses us (it answered and said no, or went silent after the handshake)
gets the full backoff: retrying sooner would only hammer it. An ingest that is absent
(nothing accepts on its port) is different: it can come back at any moment, and the backoff
alone would keep us off air for up to its whole delay after it did. So while absent, the
publisher checks the port every probe_interval_s and reconnects as soon as it accepts. A
hung ingest (it accepts TCP but never answers the handshake) is checked the same way, one
level up: an RTMP handshake, since its port accepts all along. After a dropped session one
check tells which case it is: the port still accepting means the ingest is there and let us
go (backoff); refusing means it went away (absent, probe until it is back).
"""

from __future__ import annotations

import math
from enum import Enum

from broadcaster.backoff import Backoff


class IngestState(Enum):
    WAITING = "waiting"          # for the next attempt (at start, or after a refusal)
    CONNECTING = "connecting"    # an attempt is running
    ON_AIR = "on_air"            # a session is open
    DROPPED = "dropped"          # the session ended: one check tells absent from present
    ABSENT = "absent"            # nothing accepts on the ingest's port: check it until it does
    HUNG = "hung"                # it accepts but never answers the handshake: check that


class ReconnectPolicy:
    """probe_interval_s: how often to check an absent ingest's port (0: never, backoff only)."""

    def __init__(self, backoff: Backoff, probe_interval_s: float):
        self.backoff = backoff
        self.probe_interval_s = probe_interval_s
        self.state = IngestState.WAITING
        self.next_attempt = 0.0
        self._next_probe = math.inf

    @property
    def probing(self) -> bool:
        return self.probe_interval_s > 0

    def attempt_due(self, now: float) -> bool:
        return self.state in (IngestState.WAITING, IngestState.DROPPED, IngestState.ABSENT,
                              IngestState.HUNG) and now >= self.next_attempt

    def attempt_started(self) -> None:
        self.state = IngestState.CONNECTING

    def connected(self) -> None:
        self.state = IngestState.ON_AIR
        self._next_probe = math.inf

    def failed(self, now: float, absent: bool, hung: bool = False) -> float:
        """An attempt failed; absent: nothing accepted the TCP connection; hung: it accepted
        and never answered the handshake. Returns the delay until the next attempt."""
        delay = self._back_off(now)
        if (absent or hung) and self.probing:
            self.state = IngestState.ABSENT if absent else IngestState.HUNG
            self._next_probe = now + self.probe_interval_s
        else:
            self.state = IngestState.WAITING
        return delay

    def dropped(self, now: float) -> float:
        """An open session ended; returns the delay until the next attempt."""
        delay = self._back_off(now)
        if self.probing:
            self.state, self._next_probe = IngestState.DROPPED, now
        else:
            self.state = IngestState.WAITING
        return delay

    def probe_due(self, now: float) -> bool:
        return self.state in (IngestState.DROPPED, IngestState.ABSENT, IngestState.HUNG) \
            and now >= self._next_probe and now < self.next_attempt

    @property
    def checks_handshake(self) -> bool:
        """The due check is an RTMP handshake (a hung ingest), not a TCP connect."""
        return self.state == IngestState.HUNG

    def probed(self, now: float, accepted: bool) -> bool:
        """The outcome of a check (accepted: the port accepted, or for a hung ingest the
        handshake was answered); True when the ingest is back and the next attempt was moved
        to now."""
        if self.state == IngestState.DROPPED:
            if accepted:                         # still there: it let us go, keep the backoff
                self.state = IngestState.WAITING
                return False
            self.state = IngestState.ABSENT
        elif self.state in (IngestState.ABSENT, IngestState.HUNG) and accepted:
            self.next_attempt = now
            return True
        self._next_probe = now + self.probe_interval_s
        return False

    def _back_off(self, now: float) -> float:
        delay = self.backoff.next_delay()
        self.next_attempt = now + delay
        return delay
