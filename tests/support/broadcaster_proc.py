"""The real `python -m broadcaster` as a subprocess: its command, environment and config file,
and what its control endpoint says (/healthz, /metrics, /turns)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.http import http_get, http_json
from tests.support.paths import ROOT
from tests.support.polling import wait_for

FAST_RECONNECT = {"initial_s": 0.5, "factor": 1.0, "max_s": 1.0, "jitter": 0.0}


def broadcaster_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "broadcaster", *args]


def run_env(**extra) -> dict:
    """This environment with the repository first on PYTHONPATH and no operator overrides."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("BROADCASTER_STREAM_KEY", None)
    env.pop("BROADCASTER_OUTPUT", None)
    env.update(extra)
    return env


def run_broadcaster(*args: str, timeout: float = 120, env: dict | None = None, cwd: Path | None = None):
    return subprocess.run(broadcaster_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          env=env or run_env(), cwd=cwd or ROOT)


def start_broadcaster(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(broadcaster_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env or run_env(), cwd=cwd or ROOT)


def write_config(path: Path, **sections) -> Path:
    """A config.yaml whose scenes default to the repository's scenes directory."""
    data = {"scenes_dir": str(ROOT / "scenes")}
    data.update(sections)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def healthz(port: int, timeout: float = 2.0) -> tuple[int, dict]:
    status, body = http_get(f"http://127.0.0.1:{port}/healthz", timeout)
    return status, json.loads(body)


def metrics_text(port: int) -> str:
    return http_get(f"http://127.0.0.1:{port}/metrics")[1].decode("utf-8")


def metrics(port: int) -> dict[str, object]:
    """Metric families by name, parsed with the Prometheus client's own parser."""
    return {f.name: f for f in text_string_to_metric_families(metrics_text(port))}


def sample(families: dict, family: str, sample_name: str | None = None, **labels) -> float:
    """The value of one sample (first matching the labels) of a family."""
    for s in families[family].samples:
        if s.name == (sample_name or family) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError(f"{sample_name or family} {labels} not in /metrics")


def wait_on_air(port: int, timeout: float = 30.0) -> None:
    def on_air():
        status, body = healthz(port, timeout=1)
        return status == 200 and body.get("on_air")
    wait_for(on_air, timeout, interval=0.2, what="the broadcaster to come on air")


def read_turns(port: int) -> list[dict]:
    return http_json("GET", f"http://127.0.0.1:{port}/turns")[1]["turns"]


def wait_turns(port: int, predicate, timeout: float = 30.0) -> list[dict]:
    """Poll GET /turns until predicate(turns) is true; returns the turns."""
    last: list[dict] = []

    def matched() -> bool:
        last[:] = read_turns(port)
        return predicate(last)
    wait_for(matched, timeout, interval=0.2, what=lambda: f"turns to match (last: {last})")
    return last
