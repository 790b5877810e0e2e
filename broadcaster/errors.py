"""Errors that reach the user as one clear line instead of a traceback."""

from __future__ import annotations


class BroadcasterError(Exception):
    """An error the CLI prints as one line and exits with a status (no traceback)."""

    exit_status = 1


class ConfigError(BroadcasterError):
    """A bad value in a config or scene file: names the file, the key and what is allowed."""

    exit_status = 2

    def __init__(self, source: str, key: str, message: str):
        self.source = source
        self.key = key
        self.message = message
        super().__init__(f"{source}: {key}: {message}" if key else f"{source}: {message}")


class OutputError(BroadcasterError):
    """The output (file or ingest) cannot be used at all, for a reason retrying won't fix."""

    exit_status = 3
