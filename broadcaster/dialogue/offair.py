"""While the output is off air, nothing that should be heard is spent.

An ingest outage leaves the broadcast running (its clock never waits for the network), but
whatever is said meanwhile reaches nobody. So off air the conversation starts no new turn
(this is a FloorHolder: viewers' questions stay queued) and the mixer holds the speech: the
line that was playing starts again from its beginning once on air, picture and voice
together, since the avatar's mouth follows the same samples. The broadcast starts off air.
"""

from __future__ import annotations

import logging

from broadcaster.stages import AirState

log = logging.getLogger(__name__)


class OffAirHold:
    def __init__(self, mixer):
        self.mixer = mixer
        self._on_air = False
        mixer.hold_speech(True)

    def on_air_state(self, state: AirState) -> None:
        """A station `air` event (publisher thread)."""
        if state.on_air == self._on_air:
            return
        self._on_air = state.on_air
        self.mixer.hold_speech(not state.on_air)
        if not state.on_air:
            log.info("off air: the anchor holds the line being spoken and takes no new turn")

    def floor_held(self) -> bool:
        return not self._on_air
