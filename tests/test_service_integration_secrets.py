"""No secret in any log line, metric or health body of a real run: a stream key (environment),
an OpenAI key (environment), an SRT passphrase in the config file's output URL (overridden by
--output), debug logging, text and JSON formats, and one ingest drop so reconnect lines show."""

import json
import time

import pytest

from tests.support.broadcaster_proc import (
    FAST_RECONNECT,
    healthz,
    metrics_text,
    run_env,
    start_broadcaster,
    write_config,
)
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import stop

STREAM_KEY = "live_streamkey_Q7w9e2r4"
OPENAI_KEY = "sk-proj-T3stOpenAIkey0123456789abcdef"
SRT_PASSPHRASE = "srtPassphrase-8k2m5n"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_secret_reaches_logs_metrics_or_health(nginx, tmp_path, fmt):
    port = free_port()
    config = write_config(
        tmp_path / "config.yaml",
        output={"url": f"srt://127.0.0.1:{free_port()}?mode=caller&passphrase={SRT_PASSPHRASE}",
                "reconnect": FAST_RECONNECT},
        control={"port": port}, logging={"level": "info", "format": fmt})
    env = run_env(BROADCASTER_STREAM_KEY=STREAM_KEY, OPENAI_API_KEY=OPENAI_KEY)
    # the key is appended to the app URL from the environment, as an operator would do it
    proc = start_broadcaster("run", "-c", str(config), "--output", f"rtmp://127.0.0.1:{nginx.port}/live",
                             "--log-level", "debug", "--size", "320x240", env=env)
    scraped = []
    try:
        wait_for(lambda: healthz(port)[0] == 200, 15, what="on air")
        time.sleep(1.5)
        nginx.stop()
        wait_for(lambda: healthz(port)[0] == 503, 15, what="the drop noticed")
        scraped.append(json.dumps(healthz(port)[1]))
        scraped.append(metrics_text(port))
        time.sleep(1.5)                        # at least one refused connect attempt
        nginx.start()
        wait_for(lambda: healthz(port)[0] == 200, 15, what="on air again")
        time.sleep(1)
        scraped.append(json.dumps(healthz(port)[1]))
        scraped.append(metrics_text(port))
    finally:
        out, err = stop(proc)
    assert proc.returncode == 0, err
    assert nginx.recordings(STREAM_KEY), "the stream key was really used to publish"
    assert "reconnecting in" in err and "retrying in" in err, err[-2000:]
    assert err.count("on air:") >= 2
    assert "DEBUG" in err.upper()              # debug lines were really written
    for secret in (STREAM_KEY, OPENAI_KEY, SRT_PASSPHRASE):
        assert secret not in err, secret
        assert secret not in out, secret
        for text in scraped:
            assert secret not in text, secret
    if fmt == "json":
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines
        for line in lines:
            json.loads(line)                   # one JSON object per line, tracebacks included


def test_srt_passphrase_is_masked_in_free_text_after_loading_the_config(tmp_path):
    """check_output_url registers an SRT passphrase as a secret, not only its URL form."""
    import subprocess
    import sys

    from tests.support.paths import ROOT

    config = write_config(tmp_path / "config.yaml",
                          output={"url": f"srt://127.0.0.1:9?passphrase={SRT_PASSPHRASE}"})
    code = ("import sys; from broadcaster.config import load_config; from broadcaster.redact "
            "import redact; load_config(sys.argv[1]); print(redact('the passphrase is "
            f"{SRT_PASSPHRASE}'))")
    result = subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True,
                            text=True, env=run_env(), cwd=ROOT, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "the passphrase is ***"


def test_systemd_credentials_reach_the_stages_and_never_the_log(nginx, tmp_path):
    """LoadCredential= files as systemd hands them over: the stream key publishes, the OpenAI
    key is exported as OPENAI_API_KEY for the LLM client, neither is printed."""
    from broadcaster.credentials import export_credentials

    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "stream_key").write_text(STREAM_KEY + "\n")
    (creds / "openai_api_key").write_text(OPENAI_KEY + "\n")
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    assert export_credentials(env) == ["OPENAI_API_KEY"]
    assert env["OPENAI_API_KEY"] == OPENAI_KEY
    env = {"CREDENTIALS_DIRECTORY": str(creds), "OPENAI_API_KEY": "from-environment-file"}
    assert export_credentials(env) == [] and env["OPENAI_API_KEY"] == "from-environment-file"

    port = free_port()
    config = write_config(tmp_path / "config.yaml",
                          output={"url": f"rtmp://127.0.0.1:{nginx.port}/live"},
                          control={"port": port})
    proc = start_broadcaster("run", "-c", str(config), "--log-level", "debug", "--size", "320x240",
                             env=run_env(CREDENTIALS_DIRECTORY=str(creds)))
    try:
        wait_for(lambda: healthz(port)[0] == 200, 15, what="on air")
        time.sleep(1)
        scraped = metrics_text(port)
    finally:
        out, err = stop(proc)
    assert proc.returncode == 0, err
    assert nginx.recordings(STREAM_KEY), "the stream key credential was not used to publish"
    for secret in (STREAM_KEY, OPENAI_KEY):
        assert secret not in out + err + scraped, secret
