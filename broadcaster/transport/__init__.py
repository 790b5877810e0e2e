"""Transports that carry the encoded stream off the machine (RTMP, SRT, file)."""
