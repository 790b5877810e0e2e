"""Speech out: streaming sentence splitting, TTS engines (Piper, edge-tts, streamed remote
servers), fallback, levels."""
from broadcaster.tts.edge_engine import EdgeTTSEngine, decode_mp3
from broadcaster.tts.engine import Synthesized, TTSEngine, TTSError
from broadcaster.tts.fallback import FallbackChain
from broadcaster.tts.levels import (
    BROADCAST_RATE,
    gated_rms_dbfs,
    normalize_loudness,
    prepare_speech,
    resample_to_broadcast,
)
from broadcaster.tts.piper_engine import PiperEngine, packaged_voice_paths
from broadcaster.tts.splitter import SentenceSplitter, split_first_fragment
from broadcaster.tts.stage import LineReport, SpeechSink, SpeechStage

__all__ = [
    "BROADCAST_RATE", "EdgeTTSEngine", "FallbackChain", "LineReport", "PiperEngine", "SentenceSplitter",
    "SpeechSink", "SpeechStage", "Synthesized", "TTSEngine", "TTSError", "decode_mp3", "gated_rms_dbfs",
    "normalize_loudness", "packaged_voice_paths", "prepare_speech", "resample_to_broadcast", "split_first_fragment",
]
