"""Run the real ``mldock`` CLI in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROJECT = """
[project]
name = "iris"
train = "iris.train:train"
predictor = "iris.predict:Predictor"

[hyperparameters]
n_estimators = 100

[env.big.hyperparameters]
n_estimators = 500
"""


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            python_args: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("MLDOCK_") or k == "MLDOCK_REQUIRE_DOCKER"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, *python_args, "-c", "from mldock.cli.main import main; main()", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(name="cli")
def cli_fixture():
    return run_cli


@pytest.fixture
def project(tmp_path):
    (tmp_path / "mldock.toml").write_text(textwrap.dedent(PROJECT))
    return tmp_path


@pytest.fixture
def broken_plugin_path(tmp_path):
    """PYTHONPATH holding an installed distribution whose plugin module fails to import."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "fake_broken_cli.py").write_text("import no_such_module_anywhere\n")
    info = site / "mldock_broken-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mldock-broken\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text("[mldock]\nbroken = fake_broken_cli\n")
    return str(site)
