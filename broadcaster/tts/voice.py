"""The anchor's own voice: a short reference recording and its transcript, next to the scene.

    voice:
      reference: voice/host.wav    # relative to the scene file; any format FFmpeg reads
      text: "What is said in the recording, word for word."
      language: en                 # optional; servers that need it (gpt_sovits) use it

Voice-cloning servers take it as a prompt (fish_speech sends it with every request). It is
checked when the scene loads (`broadcaster check`): a file that is not audio, a clip shorter
than MIN_S or longer than MAX_S, or one with nothing above the speech gate is refused with
the file and key named.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from broadcaster.schema import Section
from broadcaster.tts.levels import decode_mono, gated_rms_dbfs

MIN_S = 2.0    # shorter prompts leave the cloning models too little of the voice
MAX_S = 30.0   # longer ones slow every request down (and the servers cut or refuse them)


@dataclass(frozen=True)
class VoiceReference:
    path: Path
    text: str
    audio: bytes          # the file as it is on disk, for servers that take the upload
    duration_s: float
    language: str | None = None


def voice_reference(data, source: str, base_dir: Path | None, key: str = "voice"
                    ) -> VoiceReference | None:
    """The scene's `voice:` section checked and loaded, or None when there is none."""
    if data is None:
        return None
    sec = Section(data, source, key)
    sec.allow_only(("reference", "text", "language"))
    name = sec.text("reference")
    path = Path(name) if Path(name).is_absolute() or base_dir is None else base_dir / name
    if not path.is_file():
        raise sec.error("reference", f"reference recording not found: {path}")
    text = sec.text("text")
    try:
        pcm, rate = decode_mono(str(path))
    except ValueError as exc:
        raise sec.error("reference", f"{path} is not usable audio: {exc}") from None
    duration = len(pcm) / rate
    if duration < MIN_S:
        raise sec.error("reference", f"{path} is too short ({duration:.1f} s; at least {MIN_S:g} s)")
    if duration > MAX_S:
        raise sec.error("reference", f"{path} is too long ({duration:.1f} s; at most {MAX_S:g} s)")
    if gated_rms_dbfs(pcm, rate) is None:
        raise sec.error("reference", f"{path} is silent (nothing above -50 dBFS)")
    language = sec.text("language") if sec.has("language") else None
    return VoiceReference(path, text, path.read_bytes(), duration, language)

