"""Train on the shipped data, then serve the saved model: what `mldock train` / `deploy` do."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import joblib
import numpy as np
import pytest

from {{ cookiecutter.package_name }} import MODEL_FILE
from {{ cookiecutter.package_name }}.predict import Predictor
from {{ cookiecutter.package_name }}.train import CHECKPOINT_FILE, train

PROJECT_DIR = Path(__file__).resolve().parents[1]


def _dataset() -> tuple[list[str], list[list[float]], list[str]]:
    with (PROJECT_DIR / "data" / "iris.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    return header[:-1], [[float(v) for v in r[:-1]] for r in body], [r[-1] for r in body]


@pytest.fixture(params=["logistic", "forest"])
def trained(make_context, request):
    ctx = make_context(model=request.param, n_estimators=20, max_depth=5, random_state=0,
                       test_size=0.2)
    train(ctx)
    predictor = Predictor()
    predictor.load(ctx.model_dir)
    return ctx, predictor


def test_train_logs_metrics_and_saves_the_model(trained):
    ctx, _ = trained
    assert (ctx.model_dir / MODEL_FILE).is_file()
    assert {m["key"] for m in ctx.metrics} == {"accuracy", "f1"}
    # iris is an easy data set: below 80 % held-out accuracy means training is broken
    assert ctx.metric("accuracy") >= 0.8
    assert 0.0 <= ctx.metric("f1") <= 1.0


def test_predictions_match_the_known_labels(trained):
    _, predictor = trained
    _, rows, labels = _dataset()
    predicted = predictor.predict(rows)
    assert len(predicted) == len(rows)
    agreement = sum(p == t for p, t in zip(predicted, labels)) / len(labels)
    assert agreement >= 0.9
    assert all(isinstance(label, str) for label in predicted)


def test_rows_and_named_features_give_the_same_answers(trained):
    _, predictor = trained
    features, rows, _ = _dataset()
    sample = rows[::10]
    as_dicts = [dict(zip(features, row)) for row in sample]
    assert predictor.predict(as_dicts) == predictor.predict(sample)
    assert predictor.predict(as_dicts[0]) == predictor.predict(sample[:1])
    assert predictor.predict({"instances": sample}) == predictor.predict(sample)
    assert predictor.predict(np.asarray(sample)) == predictor.predict(sample)  # .npy body


def test_sample_requests(trained):
    _, predictor = trained
    instances = json.loads((PROJECT_DIR / "sample.json").read_text())["instances"]
    assert predictor.predict(instances) == ["setosa", "virginica"]
    with (PROJECT_DIR / "sample.csv").open(newline="") as handle:
        csv_rows = [row for row in csv.reader(handle) if row]
    assert predictor.predict(csv_rows) == ["setosa", "virginica"]
    features, _, _ = _dataset()
    assert predictor.predict([features, *csv_rows]) == ["setosa", "virginica"]  # with a header row


def test_bad_requests_raise_clear_errors(trained):
    _, predictor = trained
    with pytest.raises(ValueError, match="expected 4 values"):
        predictor.predict([[1.0, 2.0]])
    with pytest.raises(ValueError, match="missing feature"):
        predictor.predict([{"sepal_length": 5.1}])
    with pytest.raises(ValueError, match="numbers"):
        predictor.predict([["a", "b", "c", "d"]])
    assert predictor.predict([]) == []


def test_stop_saves_a_checkpoint_that_a_new_run_resumes(make_context, capsys):
    ctx = make_context(model="forest", n_estimators=30, random_state=1)
    train(ctx)
    assert len(ctx.stop_callbacks) == 1
    ctx.stop_callbacks[0]()  # what the runtime does on SIGTERM
    saved = joblib.load(ctx.checkpoint_dir / CHECKPOINT_FILE)
    assert saved["model"].n_estimators == 30

    resumed = make_context(model="forest", n_estimators=40, random_state=1)  # same folders: checkpoint is there
    capsys.readouterr()
    train(resumed)
    assert "resuming from checkpoint with 30 trees" in capsys.readouterr().out
    model = joblib.load(resumed.model_dir / MODEL_FILE)["model"]
    fresh_ctx = make_context(model="forest", n_estimators=40, random_state=1)
    (fresh_ctx.checkpoint_dir / CHECKPOINT_FILE).unlink()
    train(fresh_ctx)
    fresh = joblib.load(fresh_ctx.model_dir / MODEL_FILE)["model"]
    assert model.n_estimators == fresh.n_estimators == 40
    _, rows, _ = _dataset()
    assert (model.predict_proba(rows) == fresh.predict_proba(rows)).all()


def test_a_checkpoint_from_other_settings_is_ignored(make_context, capsys):
    ctx = make_context(model="forest", n_estimators=10, max_depth=2)
    train(ctx)
    ctx.stop_callbacks[0]()
    other = make_context(model="forest", n_estimators=10, max_depth=3)
    capsys.readouterr()
    train(other)
    assert "ignoring checkpoint" in capsys.readouterr().out
    assert joblib.load(other.model_dir / MODEL_FILE)["model"].max_depth == 3


def test_unknown_model_is_a_clear_error(make_context):
    with pytest.raises(ValueError, match="unknown model 'svm'"):
        train(make_context(model="svm"))


def test_a_non_primary_host_trains_but_saves_no_model(make_context):
    """With several hosts only the primary one publishes the model (``ctx.is_primary``)."""
    ctx = make_context()
    ctx.is_primary = False
    train(ctx)
    assert not (ctx.model_dir / MODEL_FILE).exists()
    assert ctx.metrics  # it trained all the same
