"""Training: mldock calls ``train(ctx)`` inside the image (or locally with ``--no-container``).

This skeleton fits a straight line ``target = slope * feature + intercept`` with the standard
library, so the whole lifecycle works before you add a framework. Replace the body with your own
training; keep the shape: read ``ctx.input_dir(...)``, log with ``ctx.log_metric``, write the model
into ``ctx.model_dir``. For long jobs, ``ctx.on_stop(save)`` registers a checkpoint callback that
runs when the platform stops the job (SIGTERM). In a job on several hosts (``instance_count = 2``)
every host runs ``train``, but only the primary one (``ctx.is_primary``) publishes the model:
save it under ``if ctx.is_primary:``.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

from {{ cookiecutter.package_name }} import MODEL_FILE


def read_columns(folder: Path, feature: str, target: str) -> tuple[list[float], list[float]]:
    """The ``feature`` and ``target`` columns of every ``*.csv`` in ``folder``."""
    files = sorted(Path(folder).glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no .csv file in the training channel {folder}")
    xs: list[float] = []
    ys: list[float] = []
    for path in files:
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if feature not in row or target not in row:
                    raise ValueError(f"{path.name}: needs columns {feature!r} and {target!r}")
                xs.append(float(row[feature]))
                ys.append(float(row[target]))
    if len(xs) < 2:
        raise ValueError(f"need at least two rows to fit a line, found {len(xs)}")
    return xs, ys


def train(ctx) -> None:
    """Fit the line, log its training error, save it as JSON in ``ctx.model_dir``."""
    feature = str(ctx.param("feature", "x"))
    target = str(ctx.param("target", "y"))
    xs, ys = read_columns(ctx.input_dir("train"), feature, target)
    slope, intercept = statistics.linear_regression(xs, ys)
    rmse = math.sqrt(statistics.fmean((slope * x + intercept - y) ** 2 for x, y in zip(xs, ys)))
    ctx.log_metric("rmse", rmse)
    ctx.log_metric("rows", float(len(xs)))
    model = {"feature": feature, "target": target, "slope": slope, "intercept": intercept}
    if ctx.is_primary:  # several hosts: only the primary's model is published
        (Path(ctx.model_dir) / MODEL_FILE).write_text(json.dumps(model, indent=2) + "\n")
    print(f"{target} = {slope:.4f} * {feature} + {intercept:.4f} (rmse {rmse:.4f}, {len(xs)} rows)")
