"""The picture: the compositor and what it draws (captions, chat overlay, text, yuv420p layers)."""
