"""broadcaster: keeps one AI anchor on air as a continuous H.264/AAC stream."""

__version__ = "0.1.0"
