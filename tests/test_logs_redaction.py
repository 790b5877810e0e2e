"""Log lines in both formats never carry a stream key, API key or SRT passphrase."""

from __future__ import annotations

import io
import json
import logging

import pytest

from broadcaster import redact
from broadcaster.logsetup import configure_logging

STREAM_KEY = "live_8812345_AbCdEfGhIjKlMnOp"
API_KEY = "sk-proj-Zq81nT7vWxYu0"
PASSPHRASE = "correct-horse-battery-9"
UNREGISTERED_KEY = "unregistered_k3y_77aa"  # only found through URL structure / key=value
SECRETS = (STREAM_KEY, API_KEY, PASSPHRASE, UNREGISTERED_KEY)


@pytest.fixture
def log_stream():
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    yield stream
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved_level)


def _configure_alone(level, fmt, stream):
    """configure_logging with every other root handler detached first: pytest adds its
    capture handlers to the root logger for each test phase, and a filter on them would
    scrub the shared record before our handler sees it, hiding a missing filter of ours."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    return configure_logging(level, fmt, stream=stream)


def _emit_everything(log: logging.Logger) -> None:
    log.info("pushing to rtmp://live.example.com/app/%s now", UNREGISTERED_KEY)
    log.info("connecting %s", f"srt://ingest.example.com:9000?mode=caller&passphrase={PASSPHRASE}")
    log.warning("llm request failed with api_key=%s", API_KEY)
    log.info("settings %r", {"stream_key": STREAM_KEY, "openai_api_key": API_KEY})
    log.info("ingest", extra={"url": f"rtmps://a.example.com:443/live2/{STREAM_KEY}",
                              "attempt": 3})
    log.info("header Authorization: Bearer %s sent", API_KEY)
    try:
        raise ConnectionError(f"refused by rtmp://h.example.com/live/{UNREGISTERED_KEY} "
                              f"(key {STREAM_KEY})")
    except ConnectionError:
        log.exception("push failed for %s", f"srt://x:1?passphrase={PASSPHRASE}")
    try:
        raise ValueError(PASSPHRASE)
    except ValueError as exc:
        log.error("bad passphrase %s", exc, exc_info=True, stack_info=True)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_secret_reaches_any_line(fmt, log_stream):
    for value in (STREAM_KEY, API_KEY, PASSPHRASE):
        redact.register_secret(value)
    _configure_alone("debug", fmt, log_stream)
    _emit_everything(logging.getLogger("broadcaster.test"))
    output = log_stream.getvalue()
    lines = output.splitlines()
    assert len(lines) == 8, output  # one line per event, tracebacks included
    for secret in SECRETS:
        assert secret not in output, (secret, output)
    assert "rtmp://live.example.com/app/***" in output
    assert "passphrase=***" in output
    assert "ConnectionError" in output  # the traceback is kept, only scrubbed
    if fmt == "json":
        events = [json.loads(line) for line in lines]
        assert [e["level"] for e in events[:3]] == ["info", "info", "warning"]
        assert events[4]["url"] == "rtmps://a.example.com:443/live2/***"
        assert events[4]["attempt"] == 3
        assert "Traceback" in events[6]["exc"]
        assert "stack" in events[7]
    else:
        assert lines[0].split(" ")[1:3] == ["level=info", "logger=broadcaster.test"]
        assert 'msg="pushing to rtmp://live.example.com/app/*** now"' in lines[0]
        assert "attempt=3" in lines[4]
        assert 'exc="Traceback' in lines[6]


def test_level_filters_and_reconfigure_replaces_handler(log_stream):
    configure_logging("warning", "text", stream=log_stream)
    second = io.StringIO()
    configure_logging("info", "json", stream=second)
    log = logging.getLogger("broadcaster.test2")
    log.debug("hidden")
    log.info("shown")
    assert log_stream.getvalue() == ""
    assert [json.loads(x)["msg"] for x in second.getvalue().splitlines()] == ["shown"]


def test_bad_level_and_format_are_named():
    with pytest.raises(ValueError, match="'loud'"):
        configure_logging("loud", "text")
    with pytest.raises(ValueError, match="'xml'.*text, json"):
        configure_logging("info", "xml")


def test_control_characters_cannot_forge_a_line(log_stream):
    _configure_alone("info", "text", log_stream)
    logging.getLogger("chat").info("viewer said %s", "hi\nts=x level=critical msg=forged")
    lines = log_stream.getvalue().splitlines()
    assert len(lines) == 1 and "\\n" in lines[0]


def test_redact_text_keeps_ordinary_text():
    text = "config.yaml: key: video.fps must be > 0; keyframe_interval=2 monkey=1 /tmp/a.flv"
    assert redact.redact_text(text) == text
    assert redact.redact_text("see http://127.0.0.1:8080/metrics.") == \
        "see http://127.0.0.1:8080/metrics."
    assert redact.redact_text("OPENAI_API_KEY=abc --stream-key=def x") == \
        "OPENAI_API_KEY=*** --stream-key=*** x"
    assert redact.redact_text("to rtmp://h/app/k, then") == "to rtmp://h/app/***, then"


def test_uncaught_exceptions_in_threads_are_logged_redacted(log_stream):
    import threading

    from broadcaster.logsetup import install_exception_hooks

    redact.register_secret(API_KEY)
    _configure_alone("info", "json", log_stream)
    restore = install_exception_hooks()
    try:
        def crash():
            raise RuntimeError(f"401 for api_key {API_KEY} at rtmp://h/app/{UNREGISTERED_KEY}")

        worker = threading.Thread(target=crash, name="tts-worker")
        worker.start()
        worker.join()
    finally:
        restore()
    events = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    assert len(events) == 1
    assert events[0]["level"] == "critical"
    assert events[0]["msg"] == "uncaught exception in thread tts-worker"
    assert "RuntimeError: 401 for api_key *** at rtmp://h/app/***" in events[0]["exc"]
