"""The main job on a real Docker engine, from a freshly rendered template.

One sklearn project is rendered and built once per test session (the cold build installs
scikit-learn from PyPI into the image); tests that change code work on copies of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mldock.testing.docker import require_docker

MLDOCK = str(Path(sys.executable).parent / "mldock")


def mldock(*args: str, cwd: Path, check: bool = True, timeout: float = 900,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the real ``mldock`` console script in ``cwd``."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("MLDOCK_") or k == "MLDOCK_REQUIRE_DOCKER"}
    full_env.update(env or {})
    result = subprocess.run([MLDOCK, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, env=full_env)
    if check and result.returncode != 0:
        raise AssertionError(f"mldock {' '.join(args)} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}")
    return result


def runs_json(project: Path) -> list[dict]:
    return json.loads(mldock("runs", "list", "--json", cwd=project).stdout)


@pytest.fixture(name="mldock")
def mldock_fixture():
    """Run the real CLI: ``mldock("train", cwd=project)``."""
    return mldock


@pytest.fixture(name="runs_json")
def runs_json_fixture():
    """``mldock runs list --json`` of a project, parsed."""
    return runs_json


@pytest.fixture(scope="session")
def engine():
    client = require_docker()
    yield client
    client.close()


@pytest.fixture(scope="session")
def built(engine, tmp_path_factory):
    """(project, image tag): the sklearn template rendered with ``mldock init`` and built once;
    its containers and images removed after."""
    root = tmp_path_factory.mktemp("main-job")
    mldock("init", "iris", "--template", "sklearn", "--no-input", cwd=root)
    project = root / "iris"
    tag = mldock("build", cwd=project).stdout.strip().splitlines()[-1]
    yield project, tag
    for container in engine.containers.list(all=True, filters={"label": "mldock.project=iris"}):
        container.remove(force=True)
    for image in engine.images.list(name="iris"):
        for t in image.tags:
            try:
                engine.images.remove(t, noprune=True)
            except Exception:  # noqa: BLE001 - an image shared by two tags goes with the last
                pass
    assert tag


@pytest.fixture(scope="session")
def built_project(built):
    """The built sklearn project's folder."""
    return built[0]


@pytest.fixture(scope="session")
def built_image(built):
    """The exact image tag ``mldock build`` made for the built project."""
    return built[1]


@pytest.fixture
def project_copy(built_project, tmp_path):
    """A copy of the built project (same code, so the same image) without its runs."""
    copy = tmp_path / "iris"
    shutil.copytree(built_project, copy, ignore=shutil.ignore_patterns(".mldock"))
    return copy
