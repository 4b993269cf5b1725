"""Shared fixtures: the repository's bundled sample, and the `detbal` binary of the same
checkout (built by `cargo build --release`, as .ci/run does before the Python step), whose output
the package must reproduce."""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = "data/sample.parquet"


def binary() -> Path:
    path = Path(os.environ.get("DETBAL_BIN", REPO / "target" / "release" / "detbal"))
    if not path.is_file():
        pytest.fail(f"no detbal binary at {path}: run `cargo build --release` first (or set DETBAL_BIN)")
    return path


def run_cli(*args, cwd=REPO):
    """Runs `detbal ARGS` in the repository; returns the completed process (text output)."""
    env = dict(os.environ, COLUMNS="100")
    return subprocess.run([binary(), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True)


def without_wall_clock(report):
    """A report.json without its wall-clock fields (timings, fit.seconds), which differ run to run."""
    report = json.loads(json.dumps(report))
    report.pop("timings")
    report["fit"].pop("seconds")
    return report


@pytest.fixture
def in_repo(monkeypatch):
    """Runs the test in the repository root, where the CLI runs, so relative paths agree."""
    monkeypatch.chdir(REPO)
    return REPO
