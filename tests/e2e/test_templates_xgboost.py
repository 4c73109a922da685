"""The xgboost template end to end on a real engine: init → build → train → deploy → predict.

The project is rendered and built once per session (``built_template``); its own tests run in
its image, where xgboost is installed.
"""

from __future__ import annotations

import json
import re

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_trains_serves_and_predicts(built_template, mldock, runs_json):
    project, image = built_template("xgboost")
    run_id = mldock("train", cwd=project).stdout.strip().splitlines()[-1]
    run = next(r for r in runs_json(project) if r["id"] == run_id)
    assert run["status"] == "finished", run
    # the synthetic churn has a learnable signal: below 0.75 AUC means training is broken
    assert run["metrics"]["auc"] >= 0.75, run["metrics"]
    assert 1 <= run["metrics"]["best_round"] < 500  # early stopping ended it
    shown = json.loads(mldock("runs", "show", run_id, "--json", cwd=project).stdout)
    assert shown["lineage"]["image"] == image

    mldock("deploy", "--run", run_id, cwd=project)
    try:
        answer = json.loads(mldock("predict", "--data", "sample.json", cwd=project).stdout)
        churner, loyal = answer["predictions"] if isinstance(answer, dict) else answer
        assert churner > 0.5 > loyal
        as_csv = json.loads(mldock("predict", "--data", "sample.csv", cwd=project).stdout)
        assert (as_csv["predictions"] if isinstance(as_csv, dict) else as_csv) == [churner, loyal]
    finally:
        mldock("undeploy", cwd=project)


def test_project_tests_pass_in_the_image(built_template, project_tests_in_image):
    project, image = built_template("xgboost")
    code, output = project_tests_in_image(project, image)
    assert code == 0, output[-4000:]
    assert re.search(r"^\d+ passed in ", output.strip().splitlines()[-1]), output[-2000:]
