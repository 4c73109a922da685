"""The main job on a real Docker engine, from a freshly rendered template.

One sklearn project is rendered and built once per test session (the cold build installs
scikit-learn from PyPI into the image); tests that change code work on copies of it. The project
is named ``iris-<8 hex>`` per session, so its images, containers and endpoints are the session's
own: cleanup removes them by that name and never touches anyone else's ``iris``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
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
                            timeout=timeout, env=full_env, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"mldock {' '.join(args)} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}")
    return result


def runs_json(project: Path) -> list[dict]:
    return json.loads(mldock("runs", "list", "--json", cwd=project).stdout)


@pytest.fixture(name="mldock", scope="session")
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
def project_name() -> str:
    """This session's own project name (``iris-<8 hex>``): its image repository, endpoint and
    container labels are this session's alone, so cleanup never touches a user's ``iris``."""
    return f"iris-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def package_name(project_name) -> str:
    """The Python package the template makes for :func:`project_name` (``iris_<8 hex>``)."""
    return project_name.replace("-", "_")


def own_leftovers(engine, name: str) -> list[str]:
    """Containers and images of the session's project ``name`` still on the engine."""
    images = engine.images.list(name=name)
    containers = engine.containers.list(all=True, filters={"label": f"mldock.project={name}"})
    for image in images:
        containers += engine.containers.list(all=True, filters={"ancestor": image.id})
    return sorted({f"container {c.name}" for c in containers}
                  | {f"image {t}" for image in images for t in image.tags})


def remove_own(engine, name: str) -> None:
    """Remove the containers and every tag of the images of project ``name`` (unique to this
    session), and nothing else: no label or repository shared with anyone is ever matched."""
    images = engine.images.list(name=name)
    containers = engine.containers.list(all=True, filters={"label": f"mldock.project={name}"})
    for image in images:
        containers += engine.containers.list(all=True, filters={"ancestor": image.id})
    for container in {c.id: c for c in containers}.values():
        with contextlib.suppress(Exception):
            container.remove(force=True)
    for image in images:
        for tag in image.tags:
            if tag.rsplit(":", 1)[0] == name:
                with contextlib.suppress(Exception):  # an image shared by two tags goes last
                    engine.images.remove(tag, noprune=True)


@pytest.fixture(scope="session")
def built(engine, tmp_path_factory, project_name):
    """(project, image tag): the sklearn template rendered with ``mldock init`` under this
    session's own name and built once; its containers and images removed after, and checked gone."""
    root = tmp_path_factory.mktemp("main-job")
    mldock("init", project_name, "--template", "sklearn", "--no-input", cwd=root)
    project = root / project_name
    try:
        tag = mldock("build", cwd=project).stdout.strip().splitlines()[-1]
        assert tag.startswith(f"{project_name}:"), tag
        yield project, tag
    finally:
        remove_own(engine, project_name)
        left = own_leftovers(engine, project_name)
        assert not left, f"the test session left its own Docker objects behind: {left}"


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
    copy = tmp_path / built_project.name
    shutil.copytree(built_project, copy, ignore=shutil.ignore_patterns(".mldock"))
    return copy


@pytest.fixture(scope="session")
def built_template(engine, tmp_path_factory):
    """``built_template("xgboost")``: (project, image tag) of that template rendered under a name
    of this session's own (``<template>-<8 hex>``) and built once per session; the pytorch one
    against a local CPU-only index (:mod:`cpu_torch`, as its README tells users to). Their
    containers and images are removed at the end, and checked gone."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import cpu_torch

    built: dict[str, tuple[Path, str]] = {}

    def get(template: str, *, key: str | None = None,
            prepare: Callable[[Path], None] | None = None) -> tuple[Path, str]:
        """``prepare(project)`` edits the rendered project before its build; ``key`` names
        such a variant (one build per key)."""
        key = key or template
        if key not in built:
            name = f"{key}-{uuid.uuid4().hex[:8]}"
            root = tmp_path_factory.mktemp(f"template-{key}")
            mldock("init", name, "--template", template, "--no-input", cwd=root)
            built[key] = (root / name, "")
            if template == "pytorch":
                cpu_torch.use_cpu_torch(root / name, engine)
            if prepare is not None:
                prepare(root / name)
            tag = mldock("build", cwd=root / name, timeout=1800).stdout.strip().splitlines()[-1]
            assert tag.startswith(f"{name}:"), tag
            built[key] = (root / name, tag)
        return built[key]

    try:
        yield get
    finally:
        names = [project.name for project, _ in built.values()]
        for name in names:
            remove_own(engine, name)
        left = [thing for name in names for thing in own_leftovers(engine, name)]
        assert not left, f"the test session left its own Docker objects behind: {left}"


def copy_pytest_kit(folder: Path) -> Path:
    """pytest and its pure-Python dependencies copied into ``folder``: mounted into an image
    (on PYTHONPATH) they run a project's own tests with the image's interpreter and libraries."""
    import importlib

    for name in ("pytest", "_pytest", "py", "pluggy", "iniconfig", "packaging", "pygments"):
        with contextlib.suppress(ImportError):
            source = Path(importlib.import_module(name).__file__)
            if source.name != "__init__.py":  # a single-module distribution (py.py)
                shutil.copy2(source, folder / source.name)
                continue
            shutil.copytree(source.parent, folder / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
    return folder


@pytest.fixture(scope="session")
def project_tests_in_image(engine, tmp_path_factory):
    """``project_tests_in_image(project, image)``: the generated project's own ``tests/``, run with
    the image's Python and libraries (the frameworks are there, not in this environment);
    returns (exit code, output)."""
    kit = copy_pytest_kit(tmp_path_factory.mktemp("pytest-kit"))

    def run(project: Path, image: str) -> tuple[int, str]:
        container = engine.containers.run(
            image, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], entrypoint="python",
            working_dir="/project", detach=True, labels={"mldock.project": project.name},
            environment={"PYTHONPATH": "/opt/pytest-kit", "PYTHONDONTWRITEBYTECODE": "1"},
            volumes={str(project): {"bind": "/project", "mode": "ro"},
                     str(kit): {"bind": "/opt/pytest-kit", "mode": "ro"}})
        try:
            code = int(container.wait(timeout=900)["StatusCode"])
            return code, container.logs().decode("utf-8", "replace")
        finally:
            container.remove(force=True)

    return run
