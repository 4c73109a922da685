"""Train on the shipped data, then serve the saved model: what `mldock train` / `deploy` do."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import MODEL_FILE
from {{ cookiecutter.package_name }}.predict import Predictor
from {{ cookiecutter.package_name }}.train import train

PROJECT_DIR = Path(__file__).resolve().parents[1]


def _least_squares() -> tuple[float, float]:
    """Slope and intercept from the normal equations, computed independently of train()."""
    with (PROJECT_DIR / "data" / "train.csv").open(newline="") as handle:
        rows = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(handle)]
    n = len(rows)
    sx = sum(x for x, _ in rows)
    sy = sum(y for _, y in rows)
    sxx = sum(x * x for x, _ in rows)
    sxy = sum(x * y for x, y in rows)
    slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
    return slope, (sy - slope * sx) / n


@pytest.fixture
def trained(make_context):
    ctx = make_context(feature="x", target="y")
    train(ctx)
    predictor = Predictor()
    predictor.load(ctx.model_dir)
    return ctx, predictor


def test_train_saves_the_fitted_line_and_logs_its_error(trained):
    ctx, _ = trained
    model = json.loads((ctx.model_dir / MODEL_FILE).read_text())
    slope, intercept = _least_squares()
    assert model["slope"] == pytest.approx(slope)
    assert model["intercept"] == pytest.approx(intercept)
    assert {m["key"] for m in ctx.metrics} == {"rmse", "rows"}
    assert ctx.metric("rmse") >= 0.0


def test_predictions_follow_the_line(trained):
    _, predictor = trained
    slope, intercept = _least_squares()
    values = json.loads((PROJECT_DIR / "sample.json").read_text())["instances"]
    expected = [slope * v + intercept for v in values]
    assert predictor.predict(values) == pytest.approx(expected)
    assert predictor.predict([[v] for v in values]) == pytest.approx(expected)  # CSV rows
    assert predictor.predict([{"x": v} for v in values]) == pytest.approx(expected)
    assert predictor.predict({"instances": values}) == pytest.approx(expected)
    with (PROJECT_DIR / "sample.csv").open(newline="") as handle:
        rows = [row for row in csv.reader(handle) if row]
    assert predictor.predict(rows) == pytest.approx(expected)
    assert predictor.predict([["x"], *rows]) == pytest.approx(expected)  # with a header row


def test_bad_requests_raise_clear_errors(trained):
    _, predictor = trained
    with pytest.raises(ValueError, match="expected one value"):
        predictor.predict([[1.0, 2.0]])
    with pytest.raises(ValueError, match="missing 'x'"):
        predictor.predict([{"z": 1.0}])
    with pytest.raises(ValueError, match="expected a number"):
        predictor.predict(["abc"])
    assert predictor.predict([]) == []


def test_missing_columns_are_reported(make_context):
    ctx = make_context(feature="height", target="y")
    with pytest.raises(ValueError, match="height"):
        train(ctx)


def test_a_non_primary_host_trains_but_saves_no_model(make_context):
    """With several hosts only the primary one publishes the model (``ctx.is_primary``)."""
    ctx = make_context()
    ctx.is_primary = False
    train(ctx)
    assert not (ctx.model_dir / MODEL_FILE).exists()
    assert ctx.metrics  # it trained all the same
