"""Train on the shipped data, then serve the saved model: what `mldock train` / `deploy` do."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from {{ cookiecutter.package_name }} import META_FILE, MODEL_FILE
from {{ cookiecutter.package_name }}.predict import Predictor
from {{ cookiecutter.package_name }}.train import CHECKPOINT_FILE, _auc, train

PROJECT_DIR = Path(__file__).resolve().parents[1]


def _dataset() -> tuple[list[str], list[list[float]], list[float]]:
    with (PROJECT_DIR / "data" / "churn.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    return header[:-1], [[float(v) for v in r[:-1]] for r in body], [float(r[-1]) for r in body]


@pytest.fixture
def trained(make_context):
    ctx = make_context(seed=0)
    train(ctx)
    predictor = Predictor()
    predictor.load(ctx.model_dir)
    return ctx, predictor


def test_train_logs_the_curve_and_saves_the_model(trained):
    ctx, _ = trained
    assert (ctx.model_dir / MODEL_FILE).is_file() and (ctx.model_dir / META_FILE).is_file()
    curve = [m for m in ctx.metrics if m["key"] == "validation_logloss"]
    assert [m["step"] for m in curve] == list(range(1, len(curve) + 1))
    assert curve[-1]["value"] < curve[0]["value"]
    # the synthetic churn has a learnable signal: below 0.75 AUC means training is broken
    assert ctx.metric("auc") >= 0.75
    assert 0.0 <= ctx.metric("accuracy") <= 1.0


def test_early_stopping_ends_before_the_round_limit_and_keeps_the_best_round(make_context):
    ctx = make_context(num_boost_round=500, early_stopping_rounds=10, eta=0.3)
    train(ctx)
    curve = [m["value"] for m in ctx.metrics if m["key"] == "validation_logloss"]
    assert len(curve) < 500
    best = int(ctx.metric("best_round"))
    assert len(curve) == best + 10  # stopped 10 rounds after the best one
    assert curve[best - 1] == min(curve)
    saved = xgb.Booster(model_file=str(ctx.model_dir / MODEL_FILE))
    assert saved.num_boosted_rounds() == best


def test_predictions_separate_churners(trained):
    _, predictor = trained
    _, rows, labels = _dataset()
    scores = np.asarray(predictor.predict(rows))
    assert len(scores) == len(rows) and ((scores >= 0) & (scores <= 1)).all()
    assert _auc(np.asarray(labels), scores) >= 0.8


def test_auc_matches_its_definition():
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.9])
    pairs = [(p, n) for p in scores[labels == 1] for n in scores[labels == 0]]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert _auc(labels, scores) == pytest.approx(expected)


def test_rows_named_features_and_missing_values(trained):
    _, predictor = trained
    features, rows, _ = _dataset()
    sample = rows[::50]
    as_dicts = [dict(zip(features, row)) for row in sample]
    assert predictor.predict(as_dicts) == predictor.predict(sample)
    assert predictor.predict({"instances": sample}) == predictor.predict(sample)
    assert predictor.predict(np.asarray(sample)) == predictor.predict(sample)  # .npy body
    partial = {name: value for name, value in as_dicts[0].items() if name != "support_calls"}
    with_gap = [*sample[0][:2], "", *sample[0][3:]]
    assert predictor.predict(partial) == predictor.predict([with_gap])  # missing, not refused


def test_sample_requests(trained):
    _, predictor = trained
    instances = json.loads((PROJECT_DIR / "sample.json").read_text())["instances"]
    churner, loyal = predictor.predict(instances)
    assert churner > 0.5 > loyal
    with (PROJECT_DIR / "sample.csv").open(newline="") as handle:
        csv_rows = [row for row in csv.reader(handle) if row]
    assert predictor.predict(csv_rows) == [churner, loyal]
    features, _, _ = _dataset()
    assert predictor.predict([features, *csv_rows]) == [churner, loyal]  # with a header row


def test_bad_requests_raise_clear_errors(trained):
    _, predictor = trained
    with pytest.raises(ValueError, match="expected 5 values"):
        predictor.predict([[1.0, 2.0]])
    with pytest.raises(ValueError, match="unknown feature"):
        predictor.predict([{"age": 5}])
    with pytest.raises(ValueError, match="numbers"):
        predictor.predict([["a", "b", "c", "d", "e"]])
    assert predictor.predict([]) == []


def test_stop_saves_a_checkpoint_that_a_new_run_resumes(make_context, capsys):
    ctx = make_context(num_boost_round=25, early_stopping_rounds=100, checkpoint_every=100)
    train(ctx)
    assert not (ctx.checkpoint_dir / CHECKPOINT_FILE).exists()  # no checkpoint round reached
    assert len(ctx.stop_callbacks) == 1
    ctx.stop_callbacks[0]()  # what the runtime does on SIGTERM
    assert xgb.Booster(model_file=str(ctx.checkpoint_dir / CHECKPOINT_FILE)
                       ).num_boosted_rounds() == 25
    capsys.readouterr()
    resumed = make_context(num_boost_round=40, early_stopping_rounds=100)
    train(resumed)
    assert "resuming from checkpoint with 25 rounds" in capsys.readouterr().out
    steps = [m["step"] for m in resumed.metrics if m["key"] == "validation_logloss"]
    assert steps == list(range(26, 41))


def test_a_checkpoint_from_other_settings_is_ignored(make_context, capsys):
    ctx = make_context(num_boost_round=10, checkpoint_every=5, max_depth=2)
    train(ctx)
    assert (ctx.checkpoint_dir / CHECKPOINT_FILE).is_file()
    other = make_context(num_boost_round=10, max_depth=3)
    capsys.readouterr()
    train(other)
    assert "ignoring checkpoint" in capsys.readouterr().out


def test_a_bad_target_is_a_clear_error(make_context):
    with pytest.raises(ValueError, match="no target column 'label'"):
        train(make_context(target="label"))
    with pytest.raises(ValueError, match="must hold 0 and 1 only"):
        train(make_context(target="support_calls"))


def test_a_non_primary_host_trains_but_saves_no_model(make_context):
    """With several hosts only the primary one publishes the model (``ctx.is_primary``)."""
    ctx = make_context(num_boost_round=10, checkpoint_every=5)
    ctx.is_primary = False
    train(ctx)
    assert not (ctx.model_dir / MODEL_FILE).exists()
    assert not (ctx.checkpoint_dir / CHECKPOINT_FILE).exists()
    assert ctx.metrics  # it trained all the same
