"""What every network sink shares: a write-only, unseekable file object for PyAV's muxer."""

from __future__ import annotations


class WriteOnlySink:
    """The file protocol around write()/close(): subclasses set self._closed and define
    write() and close()."""

    _closed = False

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
