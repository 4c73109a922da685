"""Image identity = what is in the image, with the real CLI on a real engine.

One project (the ``minimal`` template, so no framework is installed) is built once as the README
says, with ``mldock build > build.log``; then environments that only change storage, tracking,
deploy or data train on that very tag, and edits to files the image never contains keep it. Edits
that reach the image get a new tag that ``--explain`` and ``train``'s error name. The project is
named ``ident-<8 hex>``: cleanup removes that repository's tags and containers, nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from mldock.testing.docker import require_image

pytestmark = pytest.mark.docker

MLDOCK = str(Path(sys.executable).parent / "mldock")

NAME = f"ident-{uuid.uuid4().hex[:8]}"
PACKAGE = NAME.replace("-", "_")

OTHER_ENV = """
# an environment that changes everything but the image
[env.other.storage]
uri = "other-artifacts"

[env.other.tracking]
uri = "sqlite:///other-state/runs.db"

[env.other.deploy]
endpoint = "{name}-other"

[env.other.data]
train = "elsewhere/train.csv"

[env.other.hyperparameters]
feature = "x"
"""

AWS_ENV = """
# the template's SageMaker block, filled in (mldock-aws and mldock-s3 are installed here)
[env.aws.deploy]
deployer = "sagemaker"

[env.aws.deploy.sagemaker]
region = "eu-west-1"
role_arn = "arn:aws:iam::123456789012:role/mldock-ident"
instance_type = "ml.m5.large"

[env.aws.storage]
uri = "s3://ident-bucket/{name}"
"""


def mldock(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real ``mldock`` console script in ``cwd`` (no ``MLDOCK_*`` from the caller)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLDOCK_") or k == "MLDOCK_REQUIRE_DOCKER"}
    done = subprocess.run([MLDOCK, *args], cwd=cwd, capture_output=True, text=True, timeout=900,
                          env=env, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"mldock {' '.join(args)} exited {done.returncode}\n"
                             f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}")
    return done


def _remove_own(engine, name: str) -> None:
    """Containers labelled with this module's project and every tag of its repository."""
    for container in engine.containers.list(all=True, filters={"label": f"mldock.project={name}"}):
        with contextlib.suppress(Exception):
            container.remove(force=True)
    for image in engine.images.list(name=name):
        for tag in image.tags:
            if tag.rsplit(":", 1)[0] == name:
                with contextlib.suppress(Exception):
                    engine.images.remove(tag, noprune=True)


@pytest.fixture(scope="module")
def built(engine, tmp_path_factory):
    """(project, tag): rendered, given the two environments, built once with stdout redirected
    into ``build.log`` inside the project folder (as a user would)."""
    require_image(engine, "python:3.11-slim")
    root = tmp_path_factory.mktemp("identity")
    mldock("init", NAME, "--template", "minimal", "--no-input", cwd=root)
    project = root / NAME
    with (project / "mldock.toml").open("a", encoding="utf-8") as toml:
        toml.write(OTHER_ENV.format(name=NAME) + AWS_ENV.format(name=NAME))
    (project / "elsewhere").mkdir()
    shutil.copy(project / "data" / "train.csv", project / "elsewhere" / "train.csv")
    try:
        with (project / "build.log").open("w") as log:
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith("MLDOCK_") or k == "MLDOCK_REQUIRE_DOCKER"}
            done = subprocess.run([MLDOCK, "build"], cwd=project, stdout=log, env=env,
                                  stderr=subprocess.PIPE, text=True, timeout=900, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        tag = (project / "build.log").read_text().strip().splitlines()[-1]
        assert tag.startswith(f"{NAME}:"), tag
        yield project, tag
    finally:
        _remove_own(engine, NAME)


@pytest.fixture
def copy(built, tmp_path) -> Path:
    """A copy of the built project, with its build record (so explanations compare to it)."""
    target = tmp_path / NAME
    shutil.copytree(built[0], target, ignore=shutil.ignore_patterns("runs.db*", "runs"))
    return target


def _train(project: Path, *env: str) -> dict:
    run_id = mldock(*env, "train", "-q", cwd=project).stdout.strip().splitlines()[-1]
    return json.loads(mldock(*env, "runs", "show", run_id, "--json", cwd=project).stdout)


def test_train_after_build_redirected_into_the_project(built):
    project, tag = built
    run = _train(project)
    assert run["status"] == "finished" and run["lineage"]["image"] == tag


def test_env_changing_storage_tracking_deploy_data_trains_on_the_same_tag(built, engine):
    project, tag = built
    before = sorted(t for image in engine.images.list(name=NAME) for t in image.tags)
    run = _train(project, "--env", "other")
    assert run["status"] == "finished" and run["lineage"]["image"] == tag
    assert run["lineage"]["inputs"]["train"]["uri"] == "elsewhere/train.csv"  # the env applied
    assert (project / "other-state" / "runs.db").is_file()
    after = sorted(t for image in engine.images.list(name=NAME) for t in image.tags)
    assert after == before  # nothing was built


def test_aws_env_needs_no_second_build(built):
    """The README flow's `--env aws` overlay (SageMaker deployer, s3 storage): same tag, nothing
    to build. The SageMaker training itself runs against moto in mldock-aws's tests."""
    project, tag = built
    data = json.loads(mldock("--env", "aws", "build", "--json", "--explain", cwd=project).stdout)
    assert data["tag"] == tag and data["skipped"] is True
    assert data["changes"] == [f"{tag} is up to date: no input changed since the last build"]


def test_docs_notebooks_tests_and_outputs_keep_the_tag(copy, built):
    tag = built[1]
    with (copy / "README.md").open("a") as readme:
        readme.write("\nMore documentation.\n")
    (copy / "analysis.ipynb").write_text('{"cells": []}\n')
    (copy / "tests" / "test_more.py").write_text("def test_more():\n    pass\n")
    (copy / "outputs").mkdir()
    (copy / "outputs" / "big.bin").write_bytes(b"\0" * 5_000_000)
    with (copy / "mldock.toml").open("a") as toml:
        toml.write('\n[env.dev.hyperparameters]\nslope_hint = 2\n')
    data = json.loads(mldock("build", "--json", cwd=copy).stdout)
    assert data == {**data, "tag": tag, "skipped": True}
    assert _train(copy)["lineage"]["image"] == tag


def test_source_edit_changes_the_tag_names_the_file_and_rebuilds_only_the_code(copy, built):
    train_py = copy / "src" / PACKAGE / "train.py"
    train_py.write_text(train_py.read_text() + "\n# a code change\n")
    refused = mldock("train", cwd=copy, check=False)
    assert refused.returncode == 4 and "Traceback" not in refused.stderr
    error = refused.stderr.strip().splitlines()
    assert error[0].startswith("error: image ")
    assert f"src/{PACKAGE}/train.py changed since the last build, {built[1]}" in error[0]
    assert "mldock build" in refused.stderr

    rebuilt = mldock("build", "--explain", cwd=copy)
    tag = rebuilt.stdout.strip()
    assert tag != built[1] and tag.startswith(f"{NAME}:")
    assert f"  changed: src/{PACKAGE}/train.py" in rebuilt.stderr.splitlines()
    assert _cached_step("RUN python -m pip install", rebuilt.stderr)  # dependency layer reused
    assert not _cached_step("COPY src/ ", rebuilt.stderr)  # the code layer is rebuilt

    again = mldock("build", "--explain", cwd=copy)
    assert again.stdout.strip() == tag
    assert f"{tag} is up to date: no input changed since the last build" in again.stderr


def test_requirements_line_is_named(copy, built):
    with (copy / "requirements.txt").open("a") as requirements:
        requirements.write("\n# pinned tooling\n")
    lines = mldock("build", "--explain", "--json", cwd=copy)
    changes = json.loads(lines.stdout)["changes"]
    assert "  added: requirements.txt line '# pinned tooling'" in changes, changes


def test_user_dockerfile_counts_the_whole_context(copy):
    (copy / "Dockerfile").write_text(
        "FROM python:3.11-slim\nCOPY src/ /opt/program/src/\n")
    with (copy / "mldock.toml").open("a") as toml:
        toml.write('\n[build]\ndockerfile = "Dockerfile"\n')
    first = json.loads(mldock("build", "--json", cwd=copy).stdout)
    with (copy / "README.md").open("a") as readme:
        readme.write("\nEdited.\n")
    second = json.loads(mldock("build", "--json", "--explain", cwd=copy).stdout)
    assert second["tag"] != first["tag"] and second["skipped"] is False
    assert "  changed: README.md" in second["changes"]


def _cached_step(prefix: str, log: str) -> bool:
    """Whether the build step starting with ``prefix`` was taken from the engine's cache."""
    lines = log.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("Step ") and f" : {prefix}" in line:
            following = next((text for text in lines[index + 1:] if "--->" in text), "")
            return "Using cache" in following
    raise AssertionError(f"no step {prefix!r} in the build output:\n{log[-2000:]}")
