"""The terminal status line: content, redaction, when it is on, and its redraw thread."""

from __future__ import annotations

import io
import os
import pty
import select
import time

from broadcaster import redact
from broadcaster.service.status_view import (
    StatusSnapshot,
    StatusView,
    render_status_line,
    status_view_enabled,
)

SNAPSHOT = StatusSnapshot(on_air=True, ingest="rtmp://live.example.com/app/sv_key_unreg_1",
                          bitrate_bps=1_234_000, fps=24.96, queue_delay_s=0.087,
                          speaker="anchor", last_chat="ann: hi \x1b[31mthere\x1b[0m",
                          degraded=("tts",))


def test_line_shows_every_field_redacted():
    line = render_status_line(SNAPSHOT, width=200)
    assert line == ("ON AIR  | rtmp://live.example.com/app/*** | 1234 kbit/s | 25.0 fps | "
                    "queue 87 ms | speaking: anchor | degraded: tts | chat: ann: hi  [31mthere [0m")
    assert "\x1b" not in line


def test_off_air_unknowns_and_width():
    redact.register_secret("sv_passphrase_22")
    snap = StatusSnapshot(on_air=False, ingest="srt://h:9000?passphrase=sv_passphrase_22",
                          last_chat="bob: my key is sv_passphrase_22")
    line = render_status_line(snap, width=200)
    assert line.startswith("OFF AIR | srt://h:9000?passphrase=*** | - kbit/s | - fps | queue -")
    assert "sv_passphrase_22" not in line
    assert len(render_status_line(snap, width=40)) == 40
    colored = render_status_line(snap, width=200, color=True)
    assert colored.startswith("\x1b[1;100;97mOFF AIR\x1b[0m")


def test_enabled_only_on_a_terminal_outside_systemd():
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as tty:
            assert status_view_enabled(tty, {})
            assert not status_view_enabled(tty, {"INVOCATION_ID": "abc"})
            assert not status_view_enabled(tty, {"JOURNAL_STREAM": "8:123"})
        assert not status_view_enabled(io.StringIO(), {})
    finally:
        os.close(master)
        os.close(slave)


def test_view_redraws_on_a_pty_and_stops():
    master, slave = pty.openpty()
    calls = []

    def snapshot():
        calls.append(time.monotonic())
        return SNAPSHOT

    try:
        with os.fdopen(slave, "w", closefd=False) as tty:
            view = StatusView(snapshot, stream=tty, interval_s=0.05, env={})
            assert view.enabled
            view.start()
            time.sleep(0.3)
            view.stop()
            assert not view._thread
        output = os.read(master, 65536).decode()
        assert len(calls) >= 3
        assert output.count("\r\x1b[2K") >= 4  # redraws plus the final clear
        assert "ON AIR" in output and "sv_key_unreg_1" not in output
    finally:
        os.close(master)
        os.close(slave)


def test_view_is_inert_when_not_a_terminal():
    out = io.StringIO()
    view = StatusView(lambda: SNAPSHOT, stream=out, env={})
    view.start()
    view.stop()
    assert not view.enabled and out.getvalue() == ""


def _read_all(fd: int) -> str:
    chunks = []
    while select.select([fd], [], [], 0.2)[0]:
        chunks.append(os.read(fd, 65536))
    return b"".join(chunks).decode()


def test_log_lines_never_share_the_status_line():
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as tty:
            view = StatusView(lambda: SNAPSHOT, stream=tty, interval_s=10, env={})
            view.draw_once()
            line = view._line
            logs = view.wrap_log_stream(tty)
            logs.write("ts=1 level=info msg=hello\n")
            logs.flush()
            assert StatusView(lambda: SNAPSHOT, stream=io.StringIO(),
                              env={}).wrap_log_stream(tty) is tty
        output = _read_all(master).replace("\r\n", "\n")
        assert "ON AIR" in line
        # status, erased, the log line, then the status again below it
        assert output == "\r\x1b[2K" + line + "\r\x1b[2K" + "ts=1 level=info msg=hello\n" + line
    finally:
        os.close(master)
        os.close(slave)
