"""``mldock tune`` with real containers: trials of the project's image, two at a time.

A project of this session's own name (``tune-<8 hex>``) is rendered from the minimal template,
given a training function whose objective is its ``quality`` hyperparameter, and built once. Six
grid points run two at a time with median early stopping; the one bad point is also slow, so a
good trial has always completed while it still runs: its container is stopped (pruned), whatever
order the points run in. The tune's run then serves the best trial's model. A search killed
with ``kill -9`` leaves containers running; the next ``mldock tune`` stops them and finishes the
study without repeating a finished trial. Everything the tests created is removed and checked
gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

TRAIN = '''
import json
import time
from pathlib import Path


def train(ctx):
    quality = float(ctx.param("quality"))
    delay = float(ctx.param("delay"))
    for step in range(6):
        time.sleep(delay * (12 if quality < 0.5 else 1))
        ctx.log_metric("score", quality * (step + 1) / 6, step=step)
    (ctx.model_dir / "model.json").write_text(json.dumps({"quality": quality}))


class Predictor:
    def load(self, model_dir):
        self.quality = json.loads((Path(model_dir) / "model.json").read_text())["quality"]

    def predict(self, payload):
        return {"quality": self.quality}
'''

CONFIG = """
[project]
name = "{name}"
train = "tunepkg.train:train"
predictor = "tunepkg.train:Predictor"
requirements = "requirements.txt"

[hyperparameters]
delay = 0.25

[tune]
objective = "score"
direction = "maximize"
strategy = "grid"
max_trials = 6
parallel_trials = 2
early_stopping = "median"

[tune.space]
quality = {values}

[tune.local]
startup_trials = 1
"""
GOOD = [0.9, 0.92, 0.94, 0.96, 0.98]
CLI = str(Path(sys.executable).parent / "mldock")
SLOWER = ("-p", "delay=0.6")  # time to see two trials finish before the kill


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith("MLDOCK_") or k == "MLDOCK_REQUIRE_DOCKER"}


def _cleanup(engine, name: str) -> list[str]:
    """Remove this project's containers and images; return what could not be removed."""
    left = []
    images = engine.images.list(name=name)
    containers = {c.id: c for image in images
                  for c in engine.containers.list(all=True, filters={"ancestor": image.id})}
    containers.update({c.id: c for c in engine.containers.list(
        all=True, filters={"label": f"mldock.project={name}"})})
    for container in containers.values():
        with contextlib.suppress(Exception):
            container.remove(force=True)
    for image in images:
        for tag in image.tags:
            if tag.rsplit(":", 1)[0] == name:
                with contextlib.suppress(Exception):
                    engine.images.remove(tag, noprune=True)
    left += [c.name for i in engine.images.list(name=name)
             for c in engine.containers.list(all=True, filters={"ancestor": i.id})]
    return left + [t for i in engine.images.list(name=name) for t in i.tags]


@pytest.fixture(scope="module")
def tuned_project(tmp_path_factory, mldock):
    """A built project of this module's own name; its containers and images removed after."""
    from mldock.testing.docker import require_docker

    engine = require_docker()
    name = f"tune-{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("tune")
    mldock("init", name, "--template", "minimal", "--no-input", cwd=root)
    project = root / name
    package = project / "src" / "tunepkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "train.py").write_text(TRAIN)
    (project / "mldock.toml").write_text(textwrap.dedent(CONFIG).format(
        name=name, values=[*GOOD, 0.1]))
    try:
        mldock("build", cwd=project)
        yield project, engine
    finally:
        left = _cleanup(engine, name)
        engine.close()
        assert not left, f"left behind: {left}"


def _trial_containers(engine, project: Path) -> list[str]:
    images = engine.images.list(name=project.name)
    return [c.name for image in images
            for c in engine.containers.list(all=True, filters={"ancestor": image.id})
            if c.labels.get("mldock.role") == "train"]


def test_six_container_trials_one_pruned_best_model_served(tuned_project, mldock, tmp_path):
    project, engine = tuned_project
    summary = json.loads(mldock("tune", "--json", cwd=project).stdout)
    assert summary["status"] == "finished"
    trials = summary["trials"]
    assert sorted(t["params"]["quality"] for t in trials) == sorted([*GOOD, 0.1])
    bad = next(t for t in trials if t["params"]["quality"] == 0.1)
    assert bad["pruned"] and bad["status"] == "killed"
    assert bad["metrics"]["score"] < 0.1  # stopped before its last step
    assert not _trial_containers(engine, project)  # stopped and removed, pruned one included
    best = trials[0]
    assert best["status"] == "finished"
    assert best["metrics"]["score"] == max(t["metrics"].get("score", 0) for t in trials
                                           if t["status"] == "finished")
    runs = json.loads(mldock("runs", "show", best["run"], "--json", cwd=project).stdout)
    assert runs["lineage"]["image"].startswith(project.name + ":")  # trained in the image

    endpoint = f"{project.name}-best"
    try:
        mldock("deploy", "--run", summary["tune"], "--name", endpoint, cwd=project)
        payload = tmp_path / "payload.json"
        payload.write_text('{"instances": [1]}')
        answer = mldock("predict", "--name", endpoint, "--data", str(payload),
                        cwd=project).stdout
        assert json.loads(answer)["predictions"] == {"quality": best["params"]["quality"]}
    finally:
        mldock("undeploy", endpoint, cwd=project, check=False)


def test_kill_9_mid_search_then_resume(tuned_project, mldock):
    """The killed search's running trials keep their containers; the next 'mldock tune' stops
    them, records them killed, and completes the study without repeating a finished or pruned
    trial."""
    project, engine = tuned_project
    state = project / ".mldock"
    state.mkdir(exist_ok=True)
    log = state.parent / "killed-tune.log"
    with log.open("w") as err:
        child = subprocess.Popen([CLI, "tune", "--new", *SLOWER], cwd=project, env=_env(),
                                 stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        kept = _wait_ended(mldock, project, child, 2, log)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert state.is_dir()
    result = mldock("tune", "--json", *SLOWER, cwd=project)  # the same fixed values
    summary = json.loads(result.stdout)
    assert summary["resumed"] and summary["status"] == "finished"
    done = [t for t in summary["trials"] if t["status"] == "finished" or t["pruned"]]
    seen = [(t["trial"], t["params"]["quality"], t["status"], t["pruned"])
            for t in summary["trials"]]
    assert sorted(t["params"]["quality"] for t in done) == sorted([*GOOD, 0.1]), repr(seen)
    assert kept <= {t["run"] for t in done}
    assert not _trial_containers(engine, project)


def _wait_ended(mldock, project: Path, child: subprocess.Popen, count: int,
                   log: Path) -> set[str]:
    deadline = time.monotonic() + 600
    runs: list[dict] = []
    while time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.3)
        runs = json.loads(mldock("runs", "list", "--json", cwd=project).stdout)
        running = [r for r in runs if r.get("tags", {}).get("mldock.kind") == "tune"
                   and r["status"] == "running"]
        trials = running[0].get("trials", []) if running else []
        ended = {t["id"] for t in trials  # median stopping prunes good trials too
                 if t["status"] == "finished" or t["tags"].get("mldock.pruned")}
        if len(ended) >= count:
            return ended
    seen = [(r["id"], r["status"], [(t["status"], t["tags"].get("mldock.trial"))
                                     for t in r.get("trials", [])]) for r in runs]
    raise AssertionError(f"the search never had {count} ended trials (exit {child.poll()}):"
                         f"\n{log.read_text()[-3000:]}\nlast seen: {seen}")
