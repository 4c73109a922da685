"""The day-one path: init → build → train → deploy → predict → runs → undeploy, for real."""

from __future__ import annotations

import json
import urllib.request

import pytest

pytestmark = pytest.mark.docker


def test_no_op_build_builds_nothing(built_project, mldock):
    result = mldock("build", "--json", cwd=built_project)
    data = json.loads(result.stdout)
    assert data["skipped"] is True


def test_train_deploy_predict_runs_undeploy(built_project, mldock, runs_json):
    train = mldock("train", "-p", "n_estimators=25", cwd=built_project)
    run_id = train.stdout.strip()
    assert "mldock-metric accuracy=" in train.stderr  # the log is streamed

    run = json.loads(mldock("runs", "show", run_id[:8], "--json", cwd=built_project).stdout)
    assert run["status"] == "finished" and run["params"]["n_estimators"] == 25
    assert 0.8 < run["metrics"]["accuracy"] <= 1.0
    assert run["metric_history"]["accuracy"][0]["value"] == run["metrics"]["accuracy"]
    lineage = run["lineage"]
    assert lineage["image"].startswith(f"{built_project.name}:")
    assert lineage["image_id"].startswith("sha256:")
    assert lineage["platform"] == "local" and lineage["job_id"] == f"mldock-train-{run_id}"
    assert lineage["inputs"]["train"]["uri"] == "data/iris.csv"
    assert len(lineage["inputs"]["train"]["sha256"]) == 64
    assert lineage["config"]["project"]["name"] == built_project.name
    model = [a for a in run["artifacts"] if a["key"] == f"runs/{run_id}/model"]
    assert model and model[0]["kind"] == "tree" and model[0]["size"] > 0

    try:
        url = mldock("deploy", "--run", run_id, "--port", "18180", cwd=built_project).stdout.strip()
        assert url == "http://127.0.0.1:18180"
        answer = json.loads(mldock("predict", "--data", "sample.json", cwd=built_project).stdout)
        assert answer == {"predictions": ["setosa", "virginica"]}
        csv_answer = json.loads(mldock("predict", "--data", "sample.csv", cwd=built_project).stdout)
        assert csv_answer == ["setosa", "virginica"]
        with urllib.request.urlopen(f"{url}/ping", timeout=5) as ping:
            assert ping.status == 200
        listed = json.loads(mldock("deploy", "--list", "--json", cwd=built_project).stdout)
        assert [(d["name"], d["run_id"], d["status"]) for d in listed] == [
            (built_project.name, run_id, "ready")]
    finally:
        mldock("undeploy", cwd=built_project, check=False)
    gone = mldock("predict", "--data", "sample.json", cwd=built_project, check=False)
    assert gone.returncode == 4
    assert f"no local endpoint named '{built_project.name}'" in gone.stderr
    assert run_id in [r["id"] for r in runs_json(built_project)]


def test_deploy_without_run_takes_latest_finished(built_project, mldock):
    first = mldock("train", "-q", cwd=built_project).stdout.strip()
    try:
        mldock("deploy", "--port", "18181", cwd=built_project)
        listed = json.loads(mldock("deploy", "--list", "--json", cwd=built_project).stdout)
        assert listed[0]["run_id"] == first
    finally:
        mldock("undeploy", cwd=built_project, check=False)


def test_no_container_training_uses_the_same_context(built_project, mldock):
    run_id = mldock("train", "--no-container", "-p", "n_estimators=5",
                    cwd=built_project).stdout.strip()
    run = json.loads(mldock("runs", "show", run_id, "--json", cwd=built_project).stdout)
    assert run["status"] == "finished" and run["lineage"]["image"] is None
    assert run["params"]["n_estimators"] == 5 and "accuracy" in run["metrics"]


def test_runs_compare(built_project, mldock):
    a = mldock("train", "-q", "--no-container", "-p", "max_depth=1",
               cwd=built_project).stdout.strip()
    b = mldock("train", "-q", "--no-container", "-p", "max_depth=4",
               cwd=built_project).stdout.strip()
    data = json.loads(mldock("runs", "compare", a, b, "--json", cwd=built_project).stdout)
    assert data["runs"] == [a, b] and data["params"]["max_depth"] == [1, 4]
