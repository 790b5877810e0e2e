"""`broadcaster asr`, `broadcaster asr-serve` and the --mic error paths, as a user runs them."""

from __future__ import annotations

import re

from tests.support.broadcaster_proc import run_broadcaster, run_env
from tests.support.data.speech import KEY_WORDS, speech_with_pauses, words
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.processes import stop
from tests.support.programs.alsa_mic import write_config
from tests.support.servers.asr import start_asr_serve

TOKEN = "wiring-test-token-42"
FINAL = re.compile(r"^\[\s*([\d.]+)s -\s*([\d.]+)s\] FINAL\s+#(\d+): (.*)  \(\d+ ms\)$")


def _finals(stdout: str) -> list[str]:
    return [m.group(4) for line in stdout.splitlines() if (m := FINAL.match(line))]


def test_asr_file_locally_and_through_asr_serve_gives_the_same_words(tmp_path):
    wav, spans = speech_with_pauses(tmp_path / "two.wav")
    local = run_broadcaster("asr", str(wav), timeout=120)
    assert local.returncode == 0, local.stderr
    assert "partial" in local.stdout                          # partials while speaking, with times
    finals = _finals(local.stdout)
    assert len(finals) == 2, local.stdout
    for text, keys in zip(finals, KEY_WORDS):
        assert len(keys & words(text)) >= 2, (text, keys)

    port = free_port()
    env = run_env(WIRING_TOKEN=TOKEN)
    server = start_asr_serve(port, env, "WIRING_TOKEN")      # returns once it says "listening"
    try:
        remote = run_broadcaster("asr", str(wav), "--server", f"ws://127.0.0.1:{port}",
                                 "--token-env", "WIRING_TOKEN", env=env, timeout=120)
        assert remote.returncode == 0, remote.stdout + remote.stderr
        assert [words(t) & k for t, k in zip(_finals(remote.stdout), KEY_WORDS)] == \
               [words(t) & k for t, k in zip(finals, KEY_WORDS)], (remote.stdout, local.stdout)
        kbps = float(re.search(r"([\d.]+) kbit/s on the wire", remote.stdout).group(1))
        assert kbps <= 20.0
        # a wrong token: a clear refusal, exit 1, and the server keeps serving
        bad = run_broadcaster("asr", str(wav), "--server", f"ws://127.0.0.1:{port}", "--token-env", "WRONG",
                              env=run_env(WRONG="not-the-token"), timeout=60)
        assert bad.returncode != 0 and "refused" in bad.stdout + bad.stderr
        assert "not-the-token" not in bad.stdout + bad.stderr
        assert server.poll() is None
    finally:
        out, err = stop(server, timeout=20)
    assert TOKEN not in out + err


def test_asr_command_errors_are_clear(tmp_path):
    missing = run_broadcaster("asr", str(tmp_path / "nope.wav"))
    assert missing.returncode == 2 and "nope.wav" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "x.wav").write_bytes(b"RIFF....not audio")
    bad = run_broadcaster("asr", str(tmp_path / "x.wav"))
    assert bad.returncode == 2 and "x.wav" in bad.stdout + bad.stderr and "Traceback" not in bad.stderr
    wav, _ = speech_with_pauses(tmp_path / "s.wav", ["hello"], lead_s=0.2, tail_s=0.2)
    no_token = run_broadcaster("asr", str(wav), "--server", "ws://127.0.0.1:9", "--token-env", "UNSET_TOKEN_X")
    assert no_token.returncode == 2 and "$UNSET_TOKEN_X is not set" in no_token.stderr
    scheme = run_broadcaster("asr", str(wav), "--server", "http://127.0.0.1:9")
    assert scheme.returncode == 2 and "ws://" in scheme.stderr
    serve = run_broadcaster("asr-serve", "--token-env", "UNSET_TOKEN_X")
    assert serve.returncode == 2 and "$UNSET_TOKEN_X is not set" in serve.stderr
    short = run_broadcaster("asr-serve", "--token-env", "SHORT", env=run_env(SHORT="abc"))
    assert short.returncode == 2 and "at least 8" in short.stderr and "abc" not in short.stderr


def test_run_with_a_missing_mic_device_lists_the_devices_and_exits_2(tmp_path):
    # a real ALSA device ('testmic', a file-backed PCM) so the list is not empty
    (tmp_path / "in.raw").write_bytes(b"\0" * 64000)
    write_config(str(tmp_path), str(tmp_path / "in.raw"), True)
    res = run_broadcaster("run", "--mic", "USB Mic", "--output", str(tmp_path / "o.flv"), "--duration", "2",
                          env=run_env(HOME=str(tmp_path)), timeout=60)
    assert res.returncode == 2, res.stderr
    assert "--mic" in res.stderr and "'USB Mic' not found" in res.stderr
    assert "available input devices: [0] 'testmic'" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "o.flv").exists()
    file_typo = run_broadcaster("run", "--mic", str(tmp_path / "hots.wav"), "--output", str(tmp_path / "o.flv"),
                                "--duration", "2", env=run_env(HOME=str(tmp_path)), timeout=60)
    assert file_typo.returncode == 2 and "neither an existing audio file nor an input device" in file_typo.stderr


def test_mic_config_errors_name_the_key(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"scenes_dir: {ROOT / 'scenes'}\nmic:\n  enabled: true\n  vad: {{threshold: 2}}\n")
    res = run_broadcaster("run", "-c", str(cfg), "--duration", "1", "--output", str(tmp_path / "o.flv"))
    assert res.returncode == 2 and "mic.vad.threshold" in res.stderr and "between 0.05 and 0.95" in res.stderr
    cfg.write_text(f"scenes_dir: {ROOT / 'scenes'}\nmic:\n  asr: {{server: http://x:1}}\n")
    res = run_broadcaster("run", "-c", str(cfg), "--mic", "x.wav", "--duration", "1", "--output", str(tmp_path / "o.flv"))
    assert res.returncode == 2 and "mic.asr.server" in res.stderr
