"""Host microphone: capture sources (capture.py) and Silero VAD segmentation (vad.py)."""
