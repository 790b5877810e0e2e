"""Process-wide logging: one structured line per event, secrets scrubbed before formatting.

Text lines are `key=value` pairs (logfmt), JSON lines are one object per line; both carry
ts, level, logger, msg, any `extra=` fields and, for exceptions, the traceback as one escaped
field, so a journal or a log shipper never sees a multi-line event. Every message, its args,
extra fields and exception text pass through broadcaster.redact.redact_text on the handler,
so a stream key, token or passphrase (registered, or inside a URL) never reaches a line.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import IO, Any

from broadcaster.redact import redact, redact_text

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("text", "json")

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}
_MARK = "_broadcaster_handler"


class RedactFilter(logging.Filter):
    """Replace a record's message, args, extras and exception text by redacted text.

    Attached to the handler (not a logger) so that it also sees records propagated from
    every library logger. The record is rewritten in place: msg becomes the final redacted
    message and args are emptied, so no later formatter can re-insert a secret.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception as exc:  # a bad %-format must not lose the event
            message = f"{record.msg!r} (log format error: {exc})"
        record.msg = redact_text(str(message))
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact_text("".join(traceback.format_exception(*record.exc_info)))
            # Keep exc_info truthy for formatters that test it; they use exc_text when set.
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRS and not name.startswith("_"):
                setattr(record, name, _redact_value(value))
        return True


def _redact_value(value: Any) -> Any:
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    return redact_text(str(value))


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items()
            if k not in _STANDARD_ATTRS and not k.startswith("_")}


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


def _exception_text(record: logging.LogRecord) -> str | None:
    if record.exc_text:
        return record.exc_text.rstrip("\n")
    if record.exc_info and record.exc_info[0] is not None:
        return redact_text("".join(traceback.format_exception(*record.exc_info))).rstrip("\n")
    return None


def _logfmt_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if text and not any(c in text for c in ' ="\\') and text.isprintable():
        return text
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"')
               .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))
    return '"' + "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in escaped) + '"'


class TextFormatter(logging.Formatter):
    """logfmt: ts=... level=info logger=... msg="..." key=value ... exc="..."."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {"ts": _timestamp(record), "level": record.levelname.lower(),
                                  "logger": record.name, "msg": record.getMessage()}
        fields.update(_extras(record))
        exc = _exception_text(record)
        if exc:
            fields["exc"] = exc
        if record.stack_info:
            fields["stack"] = record.stack_info
        # Registered secrets once more over the whole line: cheap, and covers a formatter
        # used on a handler without RedactFilter.
        return redact(" ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items()))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: {"ts", "level", "logger", "msg", extras..., "exc"}."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {"ts": _timestamp(record), "level": record.levelname.lower(),
                                  "logger": record.name, "msg": record.getMessage()}
        for key, value in _extras(record).items():
            fields[key] = value if isinstance(value, (bool, int, float, type(None))) else str(value)
        exc = _exception_text(record)
        if exc:
            fields["exc"] = exc
        if record.stack_info:
            fields["stack"] = record.stack_info
        return redact(json.dumps(fields, ensure_ascii=False))


def configure_logging(level: str = "info", fmt: str = "text",
                      stream: IO[str] | None = None) -> logging.Handler:
    """Install the one root handler: level name (debug..critical), fmt "text" or "json".

    Calling it again (e.g. after a SIGHUP changed log settings) replaces the handler this
    function installed before; handlers installed by others (pytest's caplog) are kept but
    get the redaction filter too. Returns the handler. A bad level or format raises
    ValueError naming the value and what is allowed.
    """
    level_name = str(level).lower()
    if level_name not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _MARK, False):
            root.removeHandler(old)
            old.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    setattr(handler, _MARK, True)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactFilter())
    for other in root.handlers:
        if not any(isinstance(f, RedactFilter) for f in other.filters):
            other.addFilter(RedactFilter())
    root.addHandler(handler)
    root.setLevel(level_name.upper())
    logging.captureWarnings(True)
    return handler


def install_exception_hooks() -> Callable[[], None]:
    """Route uncaught exceptions (main thread and other threads) through logging.

    Python's default hooks print the traceback straight to stderr, past the redaction
    filter; after this, a crash prints one redacted log line instead. Returns a function
    that restores the previous hooks.
    """
    previous_sys, previous_threading = sys.excepthook, threading.excepthook
    crash_log = logging.getLogger("broadcaster.uncaught")

    def sys_hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            previous_sys(exc_type, exc, tb)
            return
        crash_log.critical("uncaught exception", exc_info=(exc_type, exc, tb))

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "?"
        crash_log.critical("uncaught exception in thread %s", name,
                           exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    sys.excepthook, threading.excepthook = sys_hook, thread_hook

    def restore() -> None:
        sys.excepthook, threading.excepthook = previous_sys, previous_threading

    return restore
