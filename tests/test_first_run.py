"""The first run from a terminal: the default scene greets and says how to talk to it, lines
typed in the terminal are chat answered on air, and the log names the recording and the studio
page. The terminal is a real pseudo-terminal on the broadcaster's stdin."""

import os
import pty
import subprocess

from tests.support.broadcaster_proc import broadcaster_cmd, run_env, wait_on_air, wait_turns
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.processes import stop


def test_a_terminal_run_greets_and_takes_typed_lines_as_chat(tmp_path):
    port = free_port()
    out = tmp_path / "first.flv"
    env = run_env()
    for name in ("INVOCATION_ID", "JOURNAL_STREAM"):       # not under systemd
        env.pop(name, None)
    master, slave = pty.openpty()
    proc = subprocess.Popen(broadcaster_cmd("run", "--output", str(out), "--control-port", str(port),
                                            "--duration", "40"),
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)
    os.close(slave)
    try:
        wait_on_air(port)
        turns = wait_turns(port, lambda t: t and t[0]["ms"]["mux"] is not None, timeout=30)
        greeting = turns[0]
        assert greeting["kind"] == "say" and "type a line in the terminal" in greeting["text"], greeting
        os.write(master, b"Hello anchor, what is on the show tonight?\n")
        turns = wait_turns(port, lambda t: any(x["kind"] == "chat" and x["ms"]["mux"] is not None
                                               for x in t), timeout=40)
        chat = next(x for x in turns if x["kind"] == "chat")
        assert chat["user"] == "you" and "what is on the show tonight" in chat["text"], chat
    finally:
        _, err = stop(proc, timeout=60)
        os.close(master)
    assert proc.returncode == 0, err
    assert f"studio page: http://127.0.0.1:{port}/studio/" in err, err
    assert f"output {out}" in err, err
    assert "type a line and press Enter" in err, err


def test_a_run_without_a_terminal_neither_greets_nor_reads_stdin(tmp_path):
    port = free_port()
    env = run_env()
    proc = subprocess.Popen(broadcaster_cmd("run", "--output", str(tmp_path / "quiet.flv"),
                                            "--control-port", str(port), "--duration", "8"),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    try:
        wait_on_air(port)
        proc.stdin.write("this line is not chat\n")
        proc.stdin.flush()
    finally:
        _, err = stop(proc, sig=None, timeout=60)
    assert proc.returncode == 0, err
    assert "type a line" not in err
    assert "turn 1" not in err, err        # nothing was said: no greeting, no chat
