"""The pytorch template end to end on a real engine, on two hosts: init → build → train
``--instances 2`` → deploy → predict.

The two hosts join one process group (gloo over the run's private network) and train
data-parallel: each prints a checksum of its final weights, which must be equal, and the model
published must be rank 0's (its ``model.json`` records the checksum and the rank that saved it).
The project is built once per session against a local CPU-only index (``built_template``); its
own tests run in its image, where torch is installed.
"""

from __future__ import annotations

import json
import re

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CHECKSUM = re.compile(
    r"^(?P<host>algo-\d) \| rank (?P<rank>\d) of 2: weights checksum (?P<sum>\w+)$", re.MULTILINE)


def test_two_hosts_train_data_parallel_then_serve(built_template, mldock, runs_json, tmp_path):
    project, _ = built_template("pytorch")
    result = mldock("train", "--instances", "2", cwd=project)
    run_id = result.stdout.strip().splitlines()[-1]
    run = next(r for r in runs_json(project) if r["id"] == run_id)
    assert run["status"] == "finished", run
    assert run["metrics"]["accuracy"] >= 0.85, run["metrics"]

    sums = {m["host"]: (m["rank"], m["sum"]) for m in CHECKSUM.finditer(result.stderr)}
    assert sorted(sums) == ["algo-1", "algo-2"], result.stderr[-3000:]
    assert (sums["algo-1"][0], sums["algo-2"][0]) == ("0", "1")
    assert sums["algo-1"][1] == sums["algo-2"][1], "the ranks ended with different weights"
    for host, rank in (("algo-1", 0), ("algo-2", 1)):
        assert f"{host} | first training step on rank {rank} at " in result.stderr

    exported = tmp_path / "model"
    mldock("runs", "export", run_id, str(exported), cwd=project)
    meta = json.loads((exported / "model.json").read_text())
    assert (meta["weights_checksum"], meta["saved_by_rank"], meta["world_size"]) == (
        sums["algo-1"][1], 0, 2)

    mldock("deploy", "--run", run_id, cwd=project)
    try:
        answer = json.loads(mldock("predict", "--data", "sample.json", cwd=project).stdout)
        assert (answer["predictions"] if isinstance(answer, dict) else answer) == [
            "setosa", "virginica"]
    finally:
        mldock("undeploy", cwd=project)


def test_project_tests_pass_in_the_image(built_template, project_tests_in_image):
    """Including two ranks joined over 127.0.0.1 inside one container (no Docker network)."""
    project, image = built_template("pytorch")
    code, output = project_tests_in_image(project, image)
    assert code == 0, output[-4000:]
    assert re.search(r"^\d+ passed", output.strip().splitlines()[-1]), output[-2000:]
