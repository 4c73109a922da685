"""``pip install mldock-core`` alone: the wheel from dist/ in a clean venv gives a working CLI.

Catches files missing from the package (templates, the runtime) and undeclared dependencies, which
the workspace environment would hide.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH (./run installs it)")
    return uv


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory) -> Path:
    uv = _uv()
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run([uv, "build", "--wheel", "-q", "-o", str(root / "dist"), str(REPO / "core")],
                   check=True)
    wheel = next((root / "dist").glob("mldock_core-*.whl"))
    venv = root / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
                    str(wheel)], check=True)
    return venv


def run(venv: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLDOCK_", "PYTHONPATH"))}
    return subprocess.run([str(venv / "bin" / "mldock"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_cli_and_builtin_plugins(clean_venv):
    result = run(clean_venv, "plugins", "list", "--all", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert {"core-commands", "core-templates", "docker-build", "local-storage", "sqlite-tracking",
            "local-deploy"} <= set(rows)
    assert all(r["status"] == "active" for r in rows.values())


def test_templates_ship_in_the_wheel(clean_venv, tmp_path):
    result = run(clean_venv, "init", "demo", "--template", "minimal", "--no-input", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert run(clean_venv, "config", "validate", cwd=tmp_path / "demo").returncode == 0


def test_runtime_ships_in_the_wheel(clean_venv):
    python = clean_venv / "bin" / "python"
    result = subprocess.run([str(python), "-c", "import mldock.runtime.server"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert (clean_venv / "bin" / "mldock-runtime").exists()
