"""Training: mldock calls ``train(ctx)`` inside the image (or locally with ``--no-container``).

``ctx`` gives the hyperparameters (``ctx.param``), the input channels (``ctx.input_dir``), where
to write the model (``ctx.model_dir``) and checkpoints (``ctx.checkpoint_dir``), and
``ctx.log_metric``. Boosting stops early once the validation loss has not improved for
``early_stopping_rounds`` rounds; the model kept is the best round's. Every
``checkpoint_every`` rounds (and on SIGTERM) the booster is checkpointed, and a stopped run with
the same data and settings resumes from it. On several hosts every host trains the same model
and only the primary one (``ctx.is_primary``) publishes it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from {{ cookiecutter.package_name }} import META_FILE, MODEL_FILE

CHECKPOINT_FILE = "checkpoint.ubj"
CHECKPOINT_META = "checkpoint.json"


def load_table(folder: Path, target: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Read every ``*.csv`` in ``folder``: (feature names, feature matrix, 0/1 labels)."""
    files = sorted(Path(folder).glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no .csv file in the training channel {folder}")
    header: list[str] | None = None
    rows: list[list[float]] = []
    labels: list[float] = []
    for path in files:
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            file_header = next(reader)
            if header is None:
                header = file_header
                if target not in header:
                    raise ValueError(f"{path.name}: no target column {target!r} in {header}")
            elif file_header != header:
                raise ValueError(f"{path.name}: columns {file_header} differ from {header}")
            at = header.index(target)
            for row in reader:
                if row:
                    labels.append(float(row[at]))
                    rows.append([float(v) if v != "" else np.nan
                                 for i, v in enumerate(row) if i != at])
    assert header is not None
    names = [name for name in header if name != target]
    return names, np.asarray(rows, dtype=float), np.asarray(labels, dtype=float)


def _settings(ctx) -> dict[str, Any]:
    return {"max_depth": int(ctx.param("max_depth", 4)), "eta": float(ctx.param("eta", 0.1)),
            "subsample": float(ctx.param("subsample", 0.9)),
            "min_child_weight": float(ctx.param("min_child_weight", 1.0)),
            "validation_size": float(ctx.param("validation_size", 0.2)),
            "seed": int(ctx.param("seed", 0)), "target": str(ctx.param("target", "churned"))}


def split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices for fitting and for validation (a seeded shuffle)."""
    order = np.random.default_rng(seed).permutation(n)
    n_valid = max(1, int(n * fraction))
    return order[n_valid:], order[:n_valid]


def train(ctx) -> None:
    """Boost trees with early stopping on the validation split; log the curve and the AUC."""
    settings = _settings(ctx)
    rounds = int(ctx.param("num_boost_round", 500))
    patience = int(ctx.param("early_stopping_rounds", 20))
    names, X, y = load_table(ctx.input_dir("train"), settings["target"])
    if not set(np.unique(y)) <= {0.0, 1.0}:
        raise ValueError(f"target {settings['target']!r} must hold 0 and 1 only")
    fit, valid = split(len(y), settings["validation_size"], settings["seed"])
    dfit = xgb.DMatrix(X[fit], label=y[fit], feature_names=names)
    dvalid = xgb.DMatrix(X[valid], label=y[valid], feature_names=names)
    params = {"objective": "binary:logistic", "eval_metric": ["auc", "logloss"],
              "tree_method": "hist", "max_depth": settings["max_depth"], "eta": settings["eta"],
              "subsample": settings["subsample"], "seed": settings["seed"],
              "min_child_weight": settings["min_child_weight"], "nthread": 0}

    checkpoints = Path(ctx.checkpoint_dir)
    start = _resume(checkpoints, settings)
    logger = _Progress(ctx, checkpoints, settings, every=int(ctx.param("checkpoint_every", 10)))
    booster = xgb.train(params, dfit, num_boost_round=max(rounds - start.num_boosted_rounds(), 0)
                        if start is not None else rounds,
                        evals=[(dfit, "train"), (dvalid, "validation")],
                        early_stopping_rounds=patience, callbacks=[logger], verbose_eval=False,
                        xgb_model=start)
    best = int(getattr(booster, "best_iteration", booster.num_boosted_rounds() - 1))
    final = booster[: best + 1]  # the best round's trees, not the ones after it
    scores = final.predict(dvalid)
    ctx.log_metric("auc", _auc(y[valid], scores))
    ctx.log_metric("accuracy", float(((scores >= 0.5) == y[valid]).mean()))
    ctx.log_metric("best_round", best + 1)
    if ctx.is_primary:  # several hosts: only the primary's model is published
        final.save_model(Path(ctx.model_dir) / MODEL_FILE)
        (Path(ctx.model_dir) / META_FILE).write_text(json.dumps(
            {"features": names, "target": settings["target"], "threshold": 0.5}, indent=2))
    print(f"boosted {booster.num_boosted_rounds()} rounds, kept {best + 1} (early stopping"
          f" after {patience} rounds without improvement)")


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic; ties share their rank)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    positives = labels == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


class _Progress(xgb.callback.TrainingCallback):
    """Logs each round's validation metrics and checkpoints the booster now and then."""

    def __init__(self, ctx, folder: Path, settings: dict[str, Any], every: int):
        super().__init__()
        self.ctx, self.folder, self.settings, self.every = ctx, folder, settings, max(every, 1)
        self.model: xgb.Booster | None = None
        ctx.on_stop(self.save)  # SIGTERM (spot interruption, a stopped job): keep the rounds

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        self.model = model
        step = model.num_boosted_rounds()
        for metric, values in evals_log.get("validation", {}).items():
            self.ctx.log_metric(f"validation_{metric}", float(values[-1]), step=step)
        if step % self.every == 0:
            self.save()
        return False  # early stopping decides when to stop

    def save(self) -> None:
        if self.model is None or not self.ctx.is_primary:
            return
        partial = self.folder / (CHECKPOINT_FILE + ".partial.ubj")
        self.model.save_model(partial)
        partial.replace(self.folder / CHECKPOINT_FILE)  # a reader never sees half a checkpoint
        (self.folder / CHECKPOINT_META).write_text(json.dumps(self.settings))


def _resume(folder: Path, settings: dict[str, Any]) -> xgb.Booster | None:
    """The checkpointed booster, if a stopped run with the same data and settings left one."""
    path, meta = folder / CHECKPOINT_FILE, folder / CHECKPOINT_META
    if not path.is_file() or not meta.is_file():
        return None
    if json.loads(meta.read_text()) != settings:
        print(f"ignoring checkpoint {path.name}: made with other data or settings")
        return None
    booster = xgb.Booster(model_file=str(path))
    print(f"resuming from checkpoint with {booster.num_boosted_rounds()} rounds")
    return booster
