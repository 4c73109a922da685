"""The pytorch template's image on two instances under SageMaker Python SDK v2's local mode.

``mldock train --instances 2`` lays out two hosts the way mldock believes SageMaker does; this
runs the same image under the SDK's own local mode (docker-compose, hosts ``algo-1-xxxxx`` and
``algo-2-xxxxx``, its own ``resourceconfig.json``), proving the layout is the platform's and not
only mldock's: both ranks join one process group through the cluster facts the runtime reads,
all-reduce their gradients (equal weight checksums), and the model in ``model.tar.gz`` is rank
0's. The project is built once for this module against a local CPU-only index (see
``tests/e2e/cpu_torch.py``) and removed after.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import sagemaker_local as sm

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MLDOCK = str(Path(sys.executable).parent / "mldock")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
HOST_LINE = re.compile(r"^\S*?(?P<host>algo-\d+)-\w+\s+\|\s(?P<text>.*)$")
CHECKSUM = re.compile(r"^rank (?P<rank>\d) of 2: weights checksum (?P<sum>\w+)$")


@dataclass(frozen=True)
class TorchProject:
    """What ``sagemaker_local.run_sdk`` needs of a project."""

    name: str
    folder: Path
    image: str
    payload: dict


def _mldock(*args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLDOCK_") or k == "MLDOCK_REQUIRE_DOCKER"}
    done = subprocess.run([MLDOCK, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=1800, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def torch_project(engine, tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
    import cpu_torch

    root = tmp_path_factory.mktemp("sdk-torch")
    name = f"sdktorch-{uuid.uuid4().hex[:8]}"
    _mldock("init", name, "--template", "pytorch", "--no-input", cwd=root)
    folder = root / name
    cpu_torch.use_cpu_torch(folder, engine)
    try:
        image = _mldock("build", cwd=folder).strip().splitlines()[-1]
        payload = json.loads((folder / "sample.json").read_text())
        yield TorchProject(name, folder, image, payload)
    finally:
        for image in engine.images.list(name=name):
            for container in engine.containers.list(all=True, filters={"ancestor": image.id}):
                container.remove(force=True)
            for tag in image.tags:
                with contextlib.suppress(Exception):  # two tags of one image: the last removes it
                    engine.images.remove(tag, noprune=True)
        assert engine.images.list(name=name) == []


def host_lines(log: str) -> dict[str, list[str]]:
    """Compose's ``<container> | <line>`` output grouped by SageMaker host (``algo-N``)."""
    hosts: dict[str, list[str]] = {}
    for raw in log.splitlines():
        match = HOST_LINE.match(ANSI.sub("", raw))
        if match:
            hosts.setdefault(match["host"], []).append(match["text"].strip())
    return hosts


def test_two_instances_train_data_parallel(torch_project, engine, sdk_python, docker_compose,
                                          run_driver, tmp_path):
    python = sdk_python("sagemaker-v2")
    hyperparameters = {**sm.project_hyperparameters(torch_project), "epochs": 20}
    result = sm.run_sdk(torch_project, engine, python, run_driver, "sagemaker_v2",
                        tmp_path / "v2-torch", instance_count=2, hyperparameters=hyperparameters)
    assert result["status"] == "Completed"
    hosts = host_lines(result["log"])
    assert sorted(hosts) == ["algo-1", "algo-2"], result["log"][-3000:]
    sums = {}
    for host, lines in hosts.items():
        found = [m for m in map(CHECKSUM.match, lines) if m]
        assert len(found) == 1, (host, lines[-20:])
        sums[host] = (found[0]["rank"], found[0]["sum"])
    assert (sums["algo-1"][0], sums["algo-2"][0]) == ("0", "1")
    assert sums["algo-1"][1] == sums["algo-2"][1], "the ranks ended with different weights"

    sm.check_model(result["files"])
    assert sorted(result["files"]) == [sm.MANIFEST, "model.json", "model.pt"]
    meta = json.loads(result["files"]["model.json"])
    assert (meta["weights_checksum"], meta["saved_by_rank"], meta["world_size"]) == (
        sums["algo-1"][1], 0, 2)
    assert sm.predictions(result["answer"]) == ["setosa", "virginica"]
