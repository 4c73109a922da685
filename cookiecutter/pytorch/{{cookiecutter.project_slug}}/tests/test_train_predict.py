"""Train on the shipped data, then serve the saved model: what `mldock train` / `deploy` do."""

from __future__ import annotations

import csv
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from {{ cookiecutter.package_name }} import MODEL_FILE, WEIGHTS_FILE
from {{ cookiecutter.package_name }}.predict import Predictor
from {{ cookiecutter.package_name }}.train import CHECKPOINT_FILE, train

PROJECT_DIR = Path(__file__).resolve().parents[1]
FAST = {"epochs": 30, "seed": 0}


def _dataset() -> tuple[list[str], list[list[float]], list[str]]:
    with (PROJECT_DIR / "data" / "iris.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    return header[:-1], [[float(v) for v in r[:-1]] for r in body], [r[-1] for r in body]


@pytest.fixture
def trained(make_context):
    ctx = make_context(**FAST)
    train(ctx)
    predictor = Predictor()
    predictor.load(ctx.model_dir)
    return ctx, predictor


def test_train_logs_metrics_and_saves_the_model(trained):
    ctx, _ = trained
    assert (ctx.model_dir / WEIGHTS_FILE).is_file() and (ctx.model_dir / MODEL_FILE).is_file()
    losses = [m for m in ctx.metrics if m["key"] == "loss"]
    assert [m["step"] for m in losses] == list(range(1, FAST["epochs"] + 1))
    assert losses[-1]["value"] < losses[0]["value"] / 2  # it learns
    # iris is an easy data set: below 85 % held-out accuracy means training is broken
    assert ctx.metric("accuracy") >= 0.85
    meta = json.loads((ctx.model_dir / MODEL_FILE).read_text())
    assert meta["saved_by_rank"] == 0 and meta["world_size"] == 1


def test_predictions_match_the_known_labels(trained):
    _, predictor = trained
    _, rows, labels = _dataset()
    predicted = predictor.predict(rows)
    assert len(predicted) == len(rows)
    assert sum(p == t for p, t in zip(predicted, labels)) / len(labels) >= 0.9
    assert all(isinstance(label, str) for label in predicted)


def test_rows_and_named_features_give_the_same_answers(trained):
    _, predictor = trained
    features, rows, _ = _dataset()
    sample = rows[::10]
    as_dicts = [dict(zip(features, row)) for row in sample]
    assert predictor.predict(as_dicts) == predictor.predict(sample)
    assert predictor.predict(as_dicts[0]) == predictor.predict(sample[:1])
    assert predictor.predict({"instances": sample}) == predictor.predict(sample)


def test_sample_requests(trained):
    _, predictor = trained
    instances = json.loads((PROJECT_DIR / "sample.json").read_text())["instances"]
    assert predictor.predict(instances) == ["setosa", "virginica"]
    with (PROJECT_DIR / "sample.csv").open(newline="") as handle:
        csv_rows = [row for row in csv.reader(handle) if row]
    assert predictor.predict(csv_rows) == ["setosa", "virginica"]
    features, _, _ = _dataset()
    assert predictor.predict([features, *csv_rows]) == ["setosa", "virginica"]  # a header row


def test_bad_requests_raise_clear_errors(trained):
    _, predictor = trained
    with pytest.raises(ValueError, match="expected 4 values"):
        predictor.predict([[1.0, 2.0]])
    with pytest.raises(ValueError, match="missing feature"):
        predictor.predict([{"sepal_length": 5.1}])
    with pytest.raises(ValueError, match="numbers"):
        predictor.predict([["a", "b", "c", "d"]])
    assert predictor.predict([]) == []


def test_a_run_is_repeatable(make_context, tmp_path):
    """The same seed gives the same weights: what makes two ranks' checksums comparable."""
    first = make_context(epochs=3)
    train(first)
    again = make_context(epochs=3)
    (again.checkpoint_dir / CHECKPOINT_FILE).unlink()
    train(again)
    a = torch.load(first.model_dir / WEIGHTS_FILE, weights_only=True)
    b = torch.load(again.model_dir / WEIGHTS_FILE, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_stop_saves_a_checkpoint_that_a_longer_run_resumes(make_context, capsys):
    ctx = make_context(epochs=4)
    train(ctx)
    assert len(ctx.stop_callbacks) == 1
    ctx.stop_callbacks[0]()  # what the runtime does on SIGTERM
    assert torch.load(ctx.checkpoint_dir / CHECKPOINT_FILE, weights_only=True)["epoch"] == 4
    capsys.readouterr()
    resumed = make_context(epochs=6)  # same folders: the checkpoint is there
    train(resumed)
    assert "resuming from checkpoint after epoch 4" in capsys.readouterr().out
    assert [m["step"] for m in resumed.metrics if m["key"] == "loss"] == [5, 6]


def test_a_checkpoint_from_other_settings_is_ignored(make_context, capsys):
    train(make_context(epochs=2, hidden=8))
    other = make_context(epochs=2, hidden=12)
    capsys.readouterr()
    train(other)
    assert "ignoring checkpoint" in capsys.readouterr().out
    assert json.loads((other.model_dir / MODEL_FILE).read_text())["hidden"] == 12


def test_a_non_primary_host_trains_but_saves_no_model(make_context):
    """With several hosts only the primary one publishes the model (``ctx.is_primary``)."""
    ctx = make_context(epochs=2)
    ctx.is_primary = False
    train(ctx)
    assert not (ctx.model_dir / WEIGHTS_FILE).exists()
    assert not (ctx.checkpoint_dir / CHECKPOINT_FILE).exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_ranks_join_one_process_group_and_end_with_the_same_weights(tmp_path):
    """Two processes (gloo over 127.0.0.1), as two hosts of a job: each trains on half the rows,
    DDP averages the gradients, so both end with equal weights; only rank 0 saves the model."""
    port = _free_port()
    worker = Path(__file__).with_name("rank_worker.py")
    params = json.dumps({"epochs": 10, "seed": 3})
    ranks = [subprocess.Popen([sys.executable, str(worker), str(rank), "2", str(port),
                               str(tmp_path), params], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    outputs = [p.communicate(timeout=300)[0] for p in ranks]
    assert [p.returncode for p in ranks] == [0, 0], outputs
    sums = [re.search(r"rank (\d) of 2: weights checksum (\w+)", out) for out in outputs]
    assert [m.group(1) for m in sums if m] == ["0", "1"], outputs
    assert sums[0].group(2) == sums[1].group(2)
    meta = json.loads((tmp_path / "rank0" / "model" / MODEL_FILE).read_text())
    assert (meta["weights_checksum"], meta["saved_by_rank"], meta["world_size"]) == (
        sums[0].group(2), 0, 2)
    assert not (tmp_path / "rank1" / "model" / WEIGHTS_FILE).exists()
    assert json.loads((tmp_path / "rank1" / "metrics.json").read_text()) == []  # primary only
    assert [m["key"] for m in json.loads((tmp_path / "rank0" / "metrics.json").read_text())
            ].count("loss") == 10
