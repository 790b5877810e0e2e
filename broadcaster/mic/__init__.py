"""Host microphone: capture sources (capture.py), Silero VAD segmentation (vad.py) and the
mic stage that puts the host into the conversation (host.py)."""
