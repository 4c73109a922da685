"""A ``train`` that plants a link to the host's secrets in its model folder, through the real CLI.

The ``mldock`` process that stores the model runs on the host: if it followed
``env -> /proc/self/environ`` it would copy its own environment (cloud keys included) into the
artifact store, and ``deploy`` would hand it to the serving container. The run must fail with
one line naming the link, be recorded as failed with that reason, and the store must hold none
of the environment: checked by grepping the store for a marker variable set for the CLI.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

LINK_TRAIN = '''

_fit = train


def train(ctx):
    """The template's training, then a link to the reading process's environment."""
    import os

    _fit(ctx)
    os.symlink("/proc/self/environ", os.path.join(ctx.model_dir, "env"))
'''

INSIDE_TRAIN = '''

_fit = train


def train(ctx):
    """The template's training, then links that stay inside the model folder."""
    import os

    _fit(ctx)
    os.makedirs(os.path.join(ctx.model_dir, "checkpoints", "step-9"))
    with open(os.path.join(ctx.model_dir, "checkpoints", "step-9", "w.txt"), "w") as handle:
        handle.write("step 9 weights")
    os.symlink("checkpoints/step-9", os.path.join(ctx.model_dir, "latest"))
'''

EXPECTED = "error: model folder contains a link that leaves it: env -> /proc/self/environ"


def make_project(mldock, root: Path, train_source: str) -> Path:
    name = f"h6link{uuid.uuid4().hex[:8]}"
    mldock("init", name, "--template", "minimal", "--no-input", cwd=root)
    project = root / name
    with open(project / "src" / name / "train.py", "a") as handle:
        handle.write(train_source)
    return project


def store_holds(project: Path, marker: str) -> list[str]:
    """Files under the project's ``.mldock/artifacts`` whose bytes contain ``marker``."""
    store = project / ".mldock" / "artifacts"
    return [str(p) for p in store.rglob("*") if p.is_file() and marker.encode() in p.read_bytes()]


def assert_refused(mldock, project: Path, result, marker: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(EXPECTED)
    run = json.loads(mldock("runs", "list", "--json", cwd=project).stdout)[0]
    assert run["status"] == "failed"
    assert run["error"].startswith(EXPECTED.removeprefix("error: "))
    assert run["artifacts"] == []
    assert store_holds(project, marker) == []


def test_no_container_train_with_a_link_out_fails_and_stores_nothing(mldock, tmp_path):
    project = make_project(mldock, tmp_path, LINK_TRAIN)
    marker = f"H6MARK{uuid.uuid4().hex}"
    result = mldock("train", "--no-container", cwd=project, check=False,
                    env={"H6_SECRET_MARKER": marker})
    assert_refused(mldock, project, result, marker)
    # the link really pointed at the secret: what a following reader would have stored
    model = next((project / ".mldock" / "runs").glob("*/local/model"))
    assert (model / "env").is_symlink()


def test_no_container_train_with_links_inside_stores_their_content(mldock, tmp_path):
    project = make_project(mldock, tmp_path, INSIDE_TRAIN)
    run_id = mldock("train", "--no-container", cwd=project).stdout.strip()
    run = json.loads(mldock("runs", "show", run_id, "--json", cwd=project).stdout)
    assert run["status"] == "finished"
    blobs = project / ".mldock" / "artifacts" / "blobs"
    manifests = [json.loads(p.read_bytes()) for p in blobs.rglob("*") if p.is_file()
                 and p.read_bytes().startswith(b"{") and b"latest/w.txt" in p.read_bytes()]
    assert manifests and manifests[0]["latest/w.txt"] == manifests[0]["checkpoints/step-9/w.txt"]


@pytest.mark.docker
def test_container_train_with_a_link_out_fails_and_stores_nothing(mldock, engine, tmp_path):
    """Trained in the image: the link is made in the container, then read by the host."""
    project = make_project(mldock, tmp_path, LINK_TRAIN)
    name = project.name
    marker = f"H6MARK{uuid.uuid4().hex}"
    try:
        mldock("build", cwd=project)
        result = mldock("train", cwd=project, check=False, env={"H6_SECRET_MARKER": marker})
        assert_refused(mldock, project, result, marker)
    finally:
        for container in engine.containers.list(all=True,
                                                filters={"label": f"mldock.project={name}"}):
            container.remove(force=True)
        for image in engine.images.list(name=name):
            for tag in image.tags:
                if tag.split(":")[0] == name:
                    engine.images.remove(tag, noprune=False)
