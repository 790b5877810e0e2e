"""The soak's fault schedule: which fault starts when and for how long, scaled to the run length.

A run is a warm-up (no faults), then cycles of every fault kind, one per slot, then a quiet
tail so the last recording closes cleanly. Short runs get one cycle with short slots; an hour
gets about one cycle every six minutes. Pure: the run length in, a list of faults out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# kind -> how long the fault lasts (s); a flood is a burst, the others a down time
FAULT_SECONDS = {
    "ingest_kill": 5.0,     # nginx-rtmp stopped, then started again on the same port
    "llm_down": 12.0,       # the OpenAI-compatible server closed (connection refused)
    "ingest_silent": 8.0,   # a listener that accepts TCP and never speaks, in nginx's place
    "tts_fail": 15.0,       # the remote voice answers HTTP 500: Piper speaks instead
    "llm_slow": 12.0,       # the first token comes after the responder's first-token timeout
    "chat_flood": 2.0,      # a burst of chat from a few users, hostile lines among them
}
CYCLE_TARGET_S = 360.0      # a long run repeats every fault about this often


@dataclass(frozen=True)
class Fault:
    kind: str
    start_s: float          # from the start of the run
    seconds: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.seconds

    def as_dict(self) -> dict:
        return asdict(self)


def warmup_seconds(run_s: float) -> float:
    return min(60.0, max(15.0, 0.1 * run_s))


def tail_seconds(run_s: float) -> float:
    return min(30.0, max(10.0, 0.05 * run_s))


def fault_schedule(run_s: float) -> list[Fault]:
    """Every kind of FAULT_SECONDS once per cycle, each at the start of its own slot, with the
    slot's remaining time on air; a fault never takes more than half of its slot."""
    usable = run_s - warmup_seconds(run_s) - tail_seconds(run_s)
    kinds = list(FAULT_SECONDS)
    if usable <= 0:
        return []
    cycles = max(1, round(usable / CYCLE_TARGET_S))
    slot = usable / (cycles * len(kinds))
    faults = []
    for i in range(cycles * len(kinds)):
        kind = kinds[i % len(kinds)]
        faults.append(Fault(kind, warmup_seconds(run_s) + i * slot, min(FAULT_SECONDS[kind], slot / 2)))
    return faults
