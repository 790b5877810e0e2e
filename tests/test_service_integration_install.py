"""`broadcaster install-service` run as a command: the units it writes pass
`systemd-analyze verify` (when that command exists) and point at a real executable."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.broadcaster_proc import run_broadcaster

needs_systemd_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                           reason="systemd-analyze is not installed")


def _verify(directory: Path, unit_name: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", f"./{unit_name}"], cwd=directory,
                          capture_output=True, text=True, timeout=60)


def _exec_start(text: str) -> Path:
    return Path(re.search(r"^ExecStart=(\S+)", text, re.M).group(1))


def _problems(stderr: str, unit_name: str) -> list[str]:
    # verify exits 0 on unknown keys or bad values; they show on stderr naming the unit file
    stem = unit_name.split("@")[0]
    return [line for line in stderr.splitlines() if stem in line]


@needs_systemd_analyze
def test_install_service_writes_a_unit_that_verifies(tmp_path):
    result = run_broadcaster("install-service", "--unit-dir", str(tmp_path), timeout=60)
    assert result.returncode == 0, result.stderr
    unit = tmp_path / "broadcaster.service"
    assert f"wrote {unit}" in result.stdout
    assert "systemctl enable --now broadcaster.service" in result.stdout
    text = unit.read_text()
    assert "Type=notify" in text and "WatchdogSec=" in text
    binary = _exec_start(text)
    assert binary.is_file(), f"ExecStart names {binary}, which does not exist"
    check = _verify(tmp_path, "broadcaster.service")
    assert check.returncode == 0, check.stderr
    assert _problems(check.stderr, "broadcaster.service") == [], check.stderr
    # a second install refuses to overwrite without --force
    again = run_broadcaster("install-service", "--unit-dir", str(tmp_path), timeout=60)
    assert again.returncode == 1 and "exists" in again.stderr
    assert run_broadcaster("install-service", "--unit-dir", str(tmp_path), "--force",
                           timeout=60).returncode == 0


@needs_systemd_analyze
def test_install_service_for_a_channel_writes_the_template_that_verifies(tmp_path):
    result = run_broadcaster("install-service", "--unit-dir", str(tmp_path), "--channel", "x",
                             timeout=60)
    assert result.returncode == 0, result.stderr
    template = tmp_path / "broadcaster@.service"
    assert template.is_file()
    assert "systemctl enable --now broadcaster@x.service" in result.stdout
    assert "/etc/broadcaster/x.yaml" in result.stdout
    assert _exec_start(template.read_text()).is_file()
    # verify an instance of the template, the way systemd loads broadcaster@x.service
    (tmp_path / "broadcaster@x.service").symlink_to(template.name)
    check = _verify(tmp_path, "broadcaster@x.service")
    assert check.returncode == 0, check.stderr
    assert _problems(check.stderr, "broadcaster@x.service") == [], check.stderr


def test_install_service_rejects_a_bad_channel_name(tmp_path):
    result = run_broadcaster("install-service", "--unit-dir", str(tmp_path), "--channel",
                             "../etc", timeout=60)
    assert result.returncode == 1
    assert "channel name" in result.stderr
    assert list(tmp_path.iterdir()) == []
