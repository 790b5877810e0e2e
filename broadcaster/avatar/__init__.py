"""Anchor renderers (renderer.AnchorRenderer): the built-in ONNX puppet, a Wav2Lip adapter
on ONNX Runtime, and a still portrait."""
from broadcaster.avatar.audio_features import MouthDriver, frame_rms_dbfs, spectral_centroid_hz
from broadcaster.avatar.puppet import DEFAULT_ASSETS, PuppetAnchor
from broadcaster.avatar.wav2lip import Wav2LipAnchor, Wav2LipModel, detect_face_box
from broadcaster.avatar.wav2lip_mel import mel_chunks, melspectrogram

__all__ = ["DEFAULT_ASSETS", "MouthDriver", "PuppetAnchor", "Wav2LipAnchor", "Wav2LipModel", "detect_face_box",
           "frame_rms_dbfs", "mel_chunks", "melspectrogram", "spectral_centroid_hz"]
