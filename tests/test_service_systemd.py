"""The systemd units: content, `systemd-analyze verify`, install helper, credentials."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from broadcaster import redact
from broadcaster.credentials import read_credential, read_credentials
from broadcaster.service.systemd_unit import (
    DEFAULT_BINARY,
    ServiceInstallError,
    install_instructions,
    install_service,
    install_service_main,
    render_unit,
)

TOOLS = Path(__file__).resolve().parent.parent / "tools" / "systemd"
REQUIRED = ["Type=notify", "NotifyAccess=main", "WatchdogSec=30", "Restart=on-failure",
            "RestartSec=5", "DynamicUser=yes", "ProtectSystem=strict", "ProtectHome=yes",
            "PrivateTmp=yes", "NoNewPrivileges=yes", "LimitNOFILE=65536"]


def _settings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith(("#", "["))]


def test_shipped_units_are_the_rendered_units():
    assert (TOOLS / "broadcaster.service").read_text() == render_unit(False)
    assert (TOOLS / "broadcaster@.service").read_text() == render_unit(True)


def test_template_unit_settings():
    settings = _settings(render_unit(True))
    for line in REQUIRED:
        assert line in settings, line
    assert f"ExecStart={DEFAULT_BINARY} run -c /etc/broadcaster/%i.yaml" in settings
    assert "LoadCredential=stream_key:/etc/broadcaster/%i.key" in settings
    assert "EnvironmentFile=-/etc/broadcaster/%i.env" in settings
    assert "StateDirectory=broadcaster/%i" in settings
    single = _settings(render_unit(False))
    assert "LoadCredential=stream_key:/etc/broadcaster/broadcaster.key" in single
    assert not any("%i" in line for line in single)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")
def test_units_pass_systemd_analyze_verify(tmp_path):
    # verify checks that ExecStart's binary exists: point it at a real executable here.
    binary = tmp_path / "broadcaster"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    (tmp_path / "broadcaster@news.service").write_text(render_unit(True, binary=str(binary)))
    (tmp_path / "broadcaster.service").write_text(render_unit(False, binary=str(binary)))
    result = subprocess.run(["systemd-analyze", "verify", "./broadcaster@news.service",
                             "./broadcaster.service"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    # verify exits 0 even for unknown keys or bad values; those show on stderr.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_install_service_writes_and_refuses_to_clobber(tmp_path):
    path = install_service("news", unit_dir=tmp_path / "units")
    assert path.name == "broadcaster@.service"
    assert path.read_text() == render_unit(True)
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    with pytest.raises(ServiceInstallError, match="exists"):
        install_service("news", unit_dir=tmp_path / "units")
    install_service("news", unit_dir=tmp_path / "units", overwrite=True)
    single = install_service(None, unit_dir=tmp_path / "units")
    assert single.name == "broadcaster.service"
    assert "systemctl enable --now broadcaster@news.service" in install_instructions(path, "news")
    with pytest.raises(ServiceInstallError, match="channel name '../x'"):
        install_service("../x", unit_dir=tmp_path)
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(ServiceInstallError, match="cannot write"):
        install_service(None, unit_dir=blocked / "sub")


def test_credentials_are_read_and_registered_as_secrets(tmp_path):
    (tmp_path / "stream_key").write_text("live_cred_key_1234\n")
    (tmp_path / "openai_api_key").write_text("sk-cred-5678")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert read_credential("stream_key", env) == "live_cred_key_1234"
    assert read_credential("srt_passphrase", env) is None
    assert read_credential("../etc/passwd", env) is None
    assert read_credential("stream_key", {}) is None
    assert read_credentials(env) == {"stream_key": "live_cred_key_1234",
                                     "openai_api_key": "sk-cred-5678"}
    assert redact.redact("key live_cred_key_1234 and sk-cred-5678") == "key *** and ***"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")
def test_hardening_exposure_is_low(tmp_path):
    binary = tmp_path / "broadcaster"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    (tmp_path / "broadcaster.service").write_text(render_unit(False, binary=str(binary)))
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                             "./broadcaster.service"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("this systemd-analyze has no --offline (needs systemd >= 250)")
    match = re.search(r"Overall exposure level for broadcaster\.service: ([0-9.]+)",
                      result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 3.0  # systemd rates 2.1 as "OK"; a default unit is 9.6


def test_install_service_main_prints_next_steps_or_the_error(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    assert install_service_main("news", unit_dir=tmp_path, binary="/usr/bin/true",
                                out=out, err=err) == 0
    assert f"wrote {tmp_path / 'broadcaster@.service'}" in out.getvalue()
    assert "ExecStart=/usr/bin/true run -c /etc/broadcaster/%i.yaml" in \
        (tmp_path / "broadcaster@.service").read_text()
    assert install_service_main("news", unit_dir=tmp_path, out=out, err=err) == 1
    assert "exists" in err.getvalue() and "--force" in err.getvalue()
    assert install_service_main("news", unit_dir=tmp_path, force=True, out=out, err=err) == 0
