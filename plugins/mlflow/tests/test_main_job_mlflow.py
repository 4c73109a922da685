"""The main job tracked on a real MLflow server: init → build → train in Docker → read back.

The sklearn template is rendered with ``mldock init``, pointed at the session's MLflow server with
``[tracking] uri = "mlflow+http://127.0.0.1:PORT"``, built and trained in its image on the real
engine. Then MLflow's own client checks what arrived (params, metric history, ``mldock.*`` lineage
tags, the model's files) and ``mldock runs list/show`` read the run back through the plugin.

The image gets its own repository name (``[build] image``) so this test never touches images of
other suites; it removes what it built, by tag.
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
from mldock.testing.docker import require_docker
from mlflow.tracking import MlflowClient

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MLDOCK = str(Path(sys.executable).parent / "mldock")
IMAGE_REPO = f"mldock-mlflow-e2e-{uuid.uuid4().hex[:8]}"  # removed by name: ours alone


def mldock(*args: str, cwd: Path, timeout: float = 1200) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLDOCK_") or k == "MLDOCK_REQUIRE_DOCKER"}
    result = subprocess.run([MLDOCK, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, env=env, check=False)
    assert result.returncode == 0, (f"mldock {' '.join(args)} exited {result.returncode}\n"
                                    f"stdout:\n{result.stdout[-3000:]}\n"
                                    f"stderr:\n{result.stderr[-3000:]}")
    return result


def _commit(project: Path) -> str | None:
    """Make the rendered project a git checkout (for the git lineage), if git is installed."""
    if shutil.which("git") is None:
        return None
    env = {**os.environ, "GIT_AUTHOR_NAME": "mldock test", "GIT_COMMITTER_NAME": "mldock test",
           "GIT_AUTHOR_EMAIL": "test@example.invalid",
           "GIT_COMMITTER_EMAIL": "test@example.invalid", "GIT_CONFIG_GLOBAL": os.devnull}
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "template"]):
        subprocess.run(["git", *argv], cwd=project, check=True, env=env, capture_output=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, check=True, env=env,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def engine():
    client = require_docker()
    yield client
    for image in client.images.list(name=IMAGE_REPO):
        for tag in image.tags:
            if tag.startswith(IMAGE_REPO + ":"):
                with contextlib.suppress(Exception):  # a 2-tag image goes with its last tag
                    client.images.remove(tag, noprune=True)
    client.close()


def test_train_in_docker_tracked_on_mlflow(engine, mlflow_server, tmp_path):
    name = f"iris-{uuid.uuid4().hex[:8]}"  # this test's own project, labels and image
    mldock("init", name, "--template", "sklearn", "--no-input", cwd=tmp_path)
    project = tmp_path / name
    experiment = f"iris-e2e-{tmp_path.name[-6:]}"
    with (project / "mldock.toml").open("a", encoding="utf-8") as config:
        config.write(f'\n[build]\nimage = "{IMAGE_REPO}"\n\n'
                     f'[tracking]\nuri = "{mlflow_server.uri}"\n\n'
                     f'[tracking.mlflow]\nexperiment = "{experiment}"\n')
    commit = _commit(project)

    tag = mldock("build", cwd=project).stdout.strip().splitlines()[-1]
    assert tag.startswith(IMAGE_REPO + ":")
    train = mldock("train", "-p", "n_estimators=30", cwd=project)
    run_id = train.stdout.strip()
    assert "View run" not in train.stdout  # MLflow's own chatter stays off mldock's stdout

    client = MlflowClient(mlflow_server.url)
    run = client.get_run(run_id)  # mldock's run id is MLflow's
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == experiment
    assert run.data.params["n_estimators"] == "30" and run.data.params["target"] == "species"
    for key in ("accuracy", "f1"):
        history = client.get_metric_history(run_id, key)
        assert len(history) == 1 and 0.8 < history[0].value <= 1.0, (key, history)
    tags = run.data.tags
    assert tags["mldock.project"] == name and tags["mldock.platform"] == "local"
    assert tags["mldock.image"] == tag and tags["mldock.image_id"].startswith("sha256:")
    assert tags["mldock.job_id"] == f"mldock-train-{run_id}"
    assert tags["mldock.input.train.uri"] == "data/iris.csv"
    assert len(tags["mldock.input.train.sha256"]) == 64
    assert json.loads(tags["mldock.config"])["tracking"]["uri"] == mlflow_server.uri
    if commit is not None:
        assert (tags["mldock.git_commit"], tags["mldock.git_dirty"]) == (commit, "false")
    model_files = {f.path for f in client.list_artifacts(run_id, "model")}
    assert {"model/model.joblib", "model/mldock-model.json"} <= model_files

    listed = json.loads(mldock("runs", "list", "--json", cwd=project).stdout)
    assert [r["id"] for r in listed] == [run_id]
    assert listed[0]["status"] == "finished" and 0.8 < listed[0]["metrics"]["accuracy"] <= 1.0
    shown = json.loads(mldock("runs", "show", run_id[:10], "--json", cwd=project).stdout)
    assert shown["id"] == run_id and shown["params"]["n_estimators"] == 30
    assert shown["metric_history"]["f1"][0]["value"] == shown["metrics"]["f1"]
    assert shown["lineage"]["image"] == tag and shown["lineage"]["platform"] == "local"
    assert shown["lineage"]["inputs"]["train"]["uri"] == "data/iris.csv"
    model = [a for a in shown["artifacts"] if a["key"] == f"runs/{run_id}/model"]
    assert model and model[0]["kind"] == "tree" and model[0]["size"] > 0
