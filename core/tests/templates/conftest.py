"""Fixtures for the template tests: run ``mldock`` in-process or as a subprocess, render projects.

Tests run with ``--import-mode=importlib``, so helpers reach them as fixtures, not imports. Every
test gets its own cookiecutter config (``COOKIECUTTER_CONFIG``): rendering never reads the
developer's ``~/.cookiecutterrc`` nor writes replay files into their home folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Result:
    """What an in-process ``mldock`` run returned."""

    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def cookiecutter_home(tmp_path_factory, monkeypatch):
    """A private cookiecutter config: clones and replay files go to a temporary folder."""
    home = tmp_path_factory.mktemp("cookiecutter-home")
    config = home / "config.yaml"
    config.write_text(f"cookiecutters_dir: {home / 'clones'}/\nreplay_dir: {home / 'replay'}/\n")
    monkeypatch.setenv("COOKIECUTTER_CONFIG", str(config))
    for name in ("MLDOCK_CONFIG", "MLDOCK_ENV"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def templates() -> Path:
    """The repository's ``cookiecutter/`` folder (the templates' sources)."""
    return REPO / "cookiecutter"


@pytest.fixture
def mldock(capsys, monkeypatch):
    """Run ``mldock ARGS`` in this process, in folder ``cwd``: returns exit code, stdout, stderr."""
    from mldock.cli.main import main

    def run(*args: str, cwd: Path) -> Result:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def run():
    """Run a command with a clean mldock environment (no inherited MLDOCK_* settings)."""

    def run_command(args: list[str], *, cwd: Path, env: dict[str, str] | None = None,
                    timeout: int = 300) -> subprocess.CompletedProcess:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
        full_env.update(env or {})
        return subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True,
                              check=False, timeout=timeout)

    return run_command


@pytest.fixture
def mldock_cmd() -> list[str]:
    """The installed console script when there is one, else the same entry point via python."""
    script = Path(sys.executable).with_name("mldock")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from mldock.cli.main import main; main()"]


@pytest.fixture
def render(mldock, tmp_path):
    """``render("sklearn", "iris")``: create a project with ``mldock init --no-input``; its path."""

    def make(template: str, name: str, *extra: str) -> Path:
        result = mldock("init", name, "--template", template, "--no-input", "--json", *extra,
                        cwd=tmp_path)
        assert result.code == 0, result.err
        return Path(json.loads(result.out)["project_dir"])

    return make


@pytest.fixture
def text_files():
    """``text_files(project)``: relpath -> text of every text file of a rendered project."""

    def read(project: Path) -> dict[str, str]:
        out = {}
        for path in sorted(project.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                try:
                    out[path.relative_to(project).as_posix()] = path.read_text("utf-8")
                except UnicodeDecodeError:
                    continue
        return out

    return read
