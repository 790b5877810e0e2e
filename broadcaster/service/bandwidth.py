"""`broadcaster bandwidth`: the up- and downlink each link needs, computed and measured.

Computed from the config for three deployments (all local; ASR and LLM remote; everything
remote, TTS too). Measured (--measure SECONDS) from a running broadcaster's /metrics: the
broadcaster_link_bytes_total counters are read twice, SECONDS apart, so the table can be
checked against the wire; broadcaster_tts_engine_bytes_total adds a line per remote TTS
engine (the "all remote" deployment's tts_download, split by engine). All rates are payload bytes the process writes or reads (what
Metrics.link_bytes counts); IP/TCP/UDP/TLS/SRT headers add the few percent noted below.

Container overhead, as PyAV 18.1 / FFmpeg 8.1 mux H.264 + AAC 128k: FLV costs ~21 bytes
per video tag and ~18 per audio tag; MPEG-TS costs 4/184 of the payload, ~110 bytes per
video frame (PES header and stuffing), 7 per AAC frame (ADTS) and ~8.3 kB/s of tables and
PCR packets (FFmpeg's defaults), i.e. 5-16 % depending on the bitrate.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from prometheus_client.parser import text_string_to_metric_families

from broadcaster.redact import redact_text
from broadcaster.schema import is_number

# The config keys read here (dotted paths), with their defaults. One place to adapt.
CONFIG_KEYS: dict[str, tuple[str, float | str]] = {
    "video_kbps": ("video.bitrate_kbps", 1500.0),       # the ceiling the rate controller uses
    "fps": ("video.fps", 25.0),
    "audio_kbps": ("audio.bitrate_kbps", 128.0),
    "output": ("output.url", "rtmp://"),
    "asr_opus_kbps": ("asr.opus_bitrate_kbps", 16.0),
    "asr_frame_ms": ("asr.opus_frame_ms", 20.0),
    "llm_tokens_per_s": ("llm.tokens_per_second", 40.0),
    "llm_bytes_per_token": ("llm.wire_bytes_per_token", 230.0),  # one SSE chunk per token
    "llm_prompt_bytes": ("llm.prompt_bytes", 3000.0),
    "llm_replies_per_min": ("llm.replies_per_minute", 4.0),
    "control_host": ("control.host", "127.0.0.1"),
    "control_port": ("control.port", 8080.0),
}

EDGE_MP3_KBPS = 48.0  # edge-tts always asks for audio-24khz-48kbitrate-mono-mp3
AUDIO_FRAME_SAMPLES = 1024  # AAC-LC
AUDIO_RATE = 48000
PCM_ASR_KBPS = 16000 * 16 / 1000  # raw 16 kHz s16 mono, for comparison: 256 kbit/s
WS_CLIENT_FRAME_BYTES = 6  # websocket header of a small masked client frame
DEPLOYMENTS = ("all local", "ASR+LLM remote", "all remote")
# Which links leave the host in each deployment.
REMOTE = {"all local": set(), "ASR+LLM remote": {"asr_uplink", "llm"},
          "all remote": {"asr_uplink", "llm", "tts_download"}}
ROWS = (("video_push", "up", "always"),
        ("video_push", "down", "always"),
        ("asr_uplink", "up", "while the host speaks"),
        ("asr_uplink", "down", "while the host speaks"),
        ("llm", "up", "per reply, averaged"),
        ("llm", "down", "while a reply streams"),
        ("tts_download", "up", "while the anchor speaks"),
        ("tts_download", "down", "while the anchor speaks"))


class BandwidthConfigError(ValueError):
    """A config value the bandwidth model cannot use; the message names the key."""


@dataclass(frozen=True)
class Inputs:
    video_kbps: float
    fps: float
    audio_kbps: float
    output: str
    asr_opus_kbps: float
    asr_frame_ms: float
    llm_tokens_per_s: float
    llm_bytes_per_token: float
    llm_prompt_bytes: float
    llm_replies_per_min: float
    control_host: str
    control_port: float
    tts_mp3_kbps: float = EDGE_MP3_KBPS
    tts_remote: tuple[str, int] | None = None   # (engine, PCM rate) of a streamed server

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Inputs":
        values: dict[str, Any] = {"tts_remote": _remote_tts(config)}
        for field, (path, default) in CONFIG_KEYS.items():
            value = _lookup(config, path, default)
            if isinstance(default, str):
                values[field] = str(value)
                continue
            if not is_number(value) or value <= 0:
                raise BandwidthConfigError(
                    f"config key {path}: expected a positive number, got {value!r}")
            values[field] = float(value)
        return cls(**values)

    @property
    def tts_engine(self) -> str:
        """The first engine of the tts: list as the remote TTS (edge-tts's MP3 unless it is
        a streamed PCM server)."""
        return self.tts_remote[0] if self.tts_remote else "edge"

    @property
    def tts_download_kbps(self) -> float:
        if self.tts_remote:
            return self.tts_remote[1] * 16 / 1000 * 1.01   # s16 mono + HTTP chunk framing
        return self.tts_mp3_kbps * 1.04                    # websocket/message headers

    @property
    def container(self) -> str:
        out = self.output.lower()
        if out.startswith("srt://") or out.startswith("udp://") or out.endswith(".ts"):
            return "mpegts"
        if "://" in out and not out.startswith("file://"):
            return "flv"
        return "file"


def _remote_tts(config: Mapping[str, Any]) -> tuple[str, int] | None:
    """(engine, PCM rate) when the first tts engine is a streamed PCM server, else None."""
    from broadcaster.tts.settings import REMOTE_PCM_RATES
    engines = _lookup(config, "tts.engines", [])
    first = engines[0] if isinstance(engines, list) and engines else None
    first = {"engine": first} if isinstance(first, str) else first
    if not isinstance(first, Mapping) or first.get("engine") not in REMOTE_PCM_RATES:
        return None
    rate = first.get("sample_rate", REMOTE_PCM_RATES[first["engine"]])
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise BandwidthConfigError(f"config key tts.engines[0].sample_rate: expected a positive "
                                   f"whole number, got {rate!r}")
    return first["engine"], rate


def _lookup(config: Mapping[str, Any], path: str, default: Any) -> Any:
    node: Any = config
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node or node[part] is None:
            return default
        node = node[part]
    return node


def video_push_kbps(inputs: Inputs) -> float:
    """Video at its ceiling + AAC + container overhead, kbit/s of muxed bytes."""
    payload_bps = (inputs.video_kbps + inputs.audio_kbps) * 1000
    audio_frames = AUDIO_RATE / AUDIO_FRAME_SAMPLES
    if inputs.container == "mpegts":
        overhead_bytes = (payload_bps / 8 * 4 / 184 + inputs.fps * 110 + audio_frames * 7
                          + 8300)
    else:  # FLV over RTMP (and the figure assumed for a file output)
        overhead_bytes = inputs.fps * 21 + audio_frames * 18
    return (payload_bps + overhead_bytes * 8) / 1000


def compute(inputs: Inputs) -> dict[str, dict[tuple[str, str], float]]:
    """kbit/s for each (link, direction) in each deployment."""
    asr_packets = 1000 / inputs.asr_frame_ms
    remote_rates = {
        ("video_push", "up"): video_push_kbps(inputs),
        ("video_push", "down"): 0.0,  # RTMP/SRT acks only
        ("asr_uplink", "up"): inputs.asr_opus_kbps + asr_packets * WS_CLIENT_FRAME_BYTES * 8 / 1000,
        ("asr_uplink", "down"): 2 * 150 * 8 / 1000,  # ~2 partial transcripts/s as JSON
        ("llm", "up"): inputs.llm_prompt_bytes * 8 / 1000 * inputs.llm_replies_per_min / 60,
        ("llm", "down"): inputs.llm_tokens_per_s * inputs.llm_bytes_per_token * 8 / 1000,
        ("tts_download", "up"): 600 * 8 / 1000 / 3.0,  # ~600 B of SSML per ~3 s sentence
        ("tts_download", "down"): inputs.tts_download_kbps,
    }
    table = {}
    for deployment in DEPLOYMENTS:
        table[deployment] = {key: (rate if key[0] == "video_push" or key[0] in REMOTE[deployment]
                                   else 0.0)
                             for key, rate in remote_rates.items()}
    return table


def metrics_url(inputs: Inputs) -> str:
    return f"http://{inputs.control_host}:{int(inputs.control_port)}/metrics"


# The counters --measure reads: family -> the labels that key its samples.
COUNTERS = {"link": ("broadcaster_link_bytes", ("link", "direction")),
            "tts_engine": ("broadcaster_tts_engine_bytes", ("engine", "direction"))}


def scrape_counters(url: str, timeout_s: float = 5.0) -> dict[str, dict[tuple[str, str], float]]:
    """Each of COUNTERS' byte counters from a /metrics endpoint, keyed by its labels."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        text = response.read().decode("utf-8")
    found: dict[str, dict[tuple[str, str], float]] = {kind: {} for kind in COUNTERS}
    for family in text_string_to_metric_families(text):
        for kind, (name, labels) in COUNTERS.items():
            if family.name != name:
                continue
            for sample in family.samples:
                if sample.name == name + "_total":
                    found[kind][tuple(sample.labels[k] for k in labels)] = sample.value
    if not found["link"]:
        raise ValueError(f"{url} has no broadcaster_link_bytes_total samples")
    return found


def scrape_link_bytes(url: str, timeout_s: float = 5.0) -> dict[tuple[str, str], float]:
    """broadcaster_link_bytes_total per (link, direction) from a /metrics endpoint."""
    return scrape_counters(url, timeout_s)["link"]


def measure_counters(url: str, seconds: float, sleep: Callable[[float], None] = time.sleep,
                     clock: Callable[[], float] = time.monotonic
                     ) -> dict[str, dict[tuple[str, str], float]]:
    """kbit/s of each of COUNTERS' keys between two scrapes `seconds` apart."""
    first, t0 = scrape_counters(url), clock()
    sleep(seconds)
    second, t1 = scrape_counters(url), clock()
    elapsed = max(t1 - t0, 1e-6)
    return {kind: {key: (value - first[kind].get(key, 0.0)) * 8 / 1000 / elapsed
                   for key, value in second[kind].items()} for kind in COUNTERS}


def measure(url: str, seconds: float, sleep: Callable[[float], None] = time.sleep,
            clock: Callable[[], float] = time.monotonic) -> dict[tuple[str, str], float]:
    """kbit/s per (link, direction) between two scrapes `seconds` apart."""
    return measure_counters(url, seconds, sleep, clock)["link"]


def format_engines(measured: dict[tuple[str, str], float]) -> str:
    """The measured tts_download rate of each remote TTS engine, one line per engine."""
    engines = sorted({engine for engine, _ in measured})
    return "\n".join(f"tts_download by engine {engine}: "
                     f"up {measured.get((engine, 'up'), 0.0):.1f}, "
                     f"down {measured.get((engine, 'down'), 0.0):.1f} kbit/s"
                     for engine in engines)


def format_table(computed: dict[str, dict[tuple[str, str], float]],
                 measured: dict[tuple[str, str], float] | None, inputs: Inputs) -> str:
    header = ["link", "dir", "when"] + list(DEPLOYMENTS) + (["measured"] if measured else [])
    rows = []
    for link, direction, when in ROWS:
        row = [link, direction, when] + [f"{computed[d][(link, direction)]:.1f}"
                                         for d in DEPLOYMENTS]
        if measured is not None:
            row.append(f"{measured.get((link, direction), 0.0):.1f}")
        rows.append(row)
    for direction in ("up", "down"):
        row = ["total", direction, "peak, all active"] + [
            f"{sum(v for (_, d), v in computed[dep].items() if d == direction):.1f}"
            for dep in DEPLOYMENTS]
        if measured is not None:
            row.append(f"{sum(v for (_, d), v in measured.items() if d == direction):.1f}")
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) if i < 3 else str(c).rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths))) for r in [header] + rows]
    container = {"flv": "FLV over RTMP", "mpegts": "MPEG-TS over SRT",
                 "file": "FLV over RTMP (output is a file: nothing is pushed)"}[inputs.container]
    notes = [
        f"kbit/s of payload. video_push: {inputs.video_kbps:g} kbit/s video ceiling + "
        f"{inputs.audio_kbps:g} kbit/s AAC + {container} container overhead.",
        f"asr_uplink: Opus {inputs.asr_opus_kbps:g} kbit/s in {inputs.asr_frame_ms:g} ms frames; "
        f"raw 16 kHz PCM would need {PCM_ASR_KBPS:.0f} kbit/s.",
        f"llm: {inputs.llm_tokens_per_s:g} tokens/s x {inputs.llm_bytes_per_token:g} B/token "
        f"(streamed chunks); prompts {inputs.llm_prompt_bytes:g} B x "
        f"{inputs.llm_replies_per_min:g} replies/min. tts_download: " + (
            f"{inputs.tts_engine} streams 16-bit PCM at {inputs.tts_remote[1]} Hz."
            if inputs.tts_remote else f"MP3 at {inputs.tts_mp3_kbps:g} kbit/s."),
        "On the wire add TCP/IP headers (~3.6 %), TLS records (~0.5 %) or SRT+UDP/IP (~3.3 %).",
    ]
    return "\n".join(lines + [""] + notes)


def bandwidth_main(config: Mapping[str, Any], measure_s: float | None,
                   out: IO[str] | None = None, err: IO[str] | None = None,
                   url: str | None = None) -> int:
    """Print the bandwidth table; with measure_s, measured rates from a running instance.

    Returns 0, or 2 on a bad config value, or 1 when no running broadcaster answers.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        inputs = Inputs.from_config(config)
    except BandwidthConfigError as exc:
        print(f"broadcaster bandwidth: {exc}", file=err)
        return 2
    measured = counters = None
    if measure_s is not None:
        if measure_s <= 0:
            print(f"broadcaster bandwidth: --measure needs a positive number of seconds, "
                  f"got {measure_s}", file=err)
            return 2
        url = url or metrics_url(inputs)
        try:
            counters = measure_counters(url, measure_s)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            print(redact_text(f"broadcaster bandwidth: cannot read {url}: {exc}. --measure "
                              f"reads a running `broadcaster run` (control.port)."), file=err)
            return 1
        measured = counters["link"]
        print(f"measured over {measure_s:g} s from {url}", file=out)
    print(format_table(compute(inputs), measured, inputs), file=out)
    if measure_s is not None and counters["tts_engine"]:
        print(format_engines(counters["tts_engine"]), file=out)
    return 0
