"""Real servers (nginx-rtmp, srt-live-transmit, ngircd, asr-serve) and wire-format fakes
(OpenAI, YouTube, Twitch IRC, edge-tts, systemd's notify socket) on loopback."""
