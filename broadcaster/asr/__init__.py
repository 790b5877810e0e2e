"""Host speech to text: short-window Whisper (whisper.py), streaming (streaming.py), remote asr-serve over Opus (protocol/server/client/remote_pipeline.py), CLI entry points (run.py)."""
