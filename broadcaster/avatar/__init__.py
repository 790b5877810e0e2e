"""Anchor renderers on ONNX Runtime: the built-in puppet and a Wav2Lip adapter."""
from .audio_features import MouthDriver, frame_rms_dbfs, spectral_centroid_hz
from .puppet import DEFAULT_ASSETS, PuppetAnchor
from .wav2lip import Wav2LipAnchor, Wav2LipModel, detect_face_box
from .wav2lip_mel import mel_chunks, melspectrogram

__all__ = ["DEFAULT_ASSETS", "MouthDriver", "PuppetAnchor", "Wav2LipAnchor", "Wav2LipModel", "detect_face_box",
           "frame_rms_dbfs", "mel_chunks", "melspectrogram", "spectral_centroid_hz"]
