"""Training: mldock calls ``train(ctx)`` inside the image (or locally with ``--no-container``).

``ctx`` gives the hyperparameters (``ctx.param``), the input channels (``ctx.input_dir``), where
to write the model (``ctx.model_dir``) and checkpoints (``ctx.checkpoint_dir``), and
``ctx.log_metric``.
The same function runs unchanged on SageMaker, Vertex AI and Azure ML. In a job on several hosts
(``instance_count = 2``) every host runs it, but only the primary one (``ctx.is_primary``)
publishes the model, so the model is saved under ``if ctx.is_primary:``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from {{ cookiecutter.package_name }} import MODEL_FILE

CHECKPOINT_FILE = "checkpoint.joblib"
TREES_PER_STEP = 10  # the forest grows in steps so a stopped job keeps the trees it has


def load_table(folder: Path, target: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Read every ``*.csv`` in ``folder``: (feature names, feature matrix, labels)."""
    files = sorted(Path(folder).glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no .csv file in the training channel {folder}")
    header: list[str] | None = None
    features: list[list[float]] = []
    labels: list[str] = []
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
            label_at = header.index(target)
            for row in reader:
                if not row:
                    continue
                labels.append(row[label_at])
                features.append([float(v) for i, v in enumerate(row) if i != label_at])
    assert header is not None
    names = [name for name in header if name != target]
    return names, np.asarray(features, dtype=float), np.asarray(labels)


def _max_depth(value: Any) -> int | None:
    """0, "none" or no value mean: grow trees until their leaves are pure."""
    if value in (None, 0, "none", "None", ""):
        return None
    return int(value)


MODELS = ("logistic", "forest")


def train(ctx) -> None:
    """Fit the chosen model, log held-out accuracy and F1, save it to ``ctx.model_dir``.

    ``model = "logistic"`` (the default: scaled logistic regression, fast to serve) or
    ``"forest"`` (a random forest grown in checkpointed steps).
    """
    target = str(ctx.param("target", "species"))
    kind = str(ctx.param("model", "logistic"))
    if kind not in MODELS:
        raise ValueError(f"unknown model {kind!r}: use one of {', '.join(MODELS)}")
    random_state = int(ctx.param("random_state", 0))
    test_size = float(ctx.param("test_size", 0.2))

    names, X, y = load_table(ctx.input_dir("train"), target)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=random_state, stratify=y)
    if kind == "logistic":
        model: Any = _logistic(ctx, X_train, y_train, random_state)
    else:
        model = _forest(ctx, names, X_train, y_train, random_state, test_size)

    predicted = model.predict(X_test)
    ctx.log_metric("accuracy", float(accuracy_score(y_test, predicted)))
    ctx.log_metric("f1", float(f1_score(y_test, predicted, average="macro")))

    if ctx.is_primary:  # several hosts: only the primary's model is published
        joblib.dump({"model": model, "features": names, "target": target},
                    Path(ctx.model_dir) / MODEL_FILE)
    print(f"trained a {kind} model on {len(y_train)} rows;"
          f" classes: {', '.join(map(str, model.classes_))}")


def _logistic(ctx, X_train: np.ndarray, y_train: np.ndarray, random_state: int) -> Pipeline:
    """Standardised features and a multinomial logistic regression: well suited to small
    tabular data, and a fraction of a millisecond per prediction when served."""
    model = make_pipeline(StandardScaler(), LogisticRegression(
        C=float(ctx.param("C", 1.0)), max_iter=int(ctx.param("max_iter", 500)),
        random_state=random_state))
    return model.fit(X_train, y_train)


def _forest(ctx, names: list[str], X_train: np.ndarray, y_train: np.ndarray, random_state: int,
            test_size: float) -> RandomForestClassifier:
    """A random forest grown ``TREES_PER_STEP`` trees at a time; a stopped run keeps its trees."""
    n_estimators = int(ctx.param("n_estimators", 100))
    settings = {"max_depth": _max_depth(ctx.param("max_depth", 5)),
                "random_state": random_state, "test_size": test_size}

    checkpoint = Path(ctx.checkpoint_dir) / CHECKPOINT_FILE
    model = _resume(checkpoint, names, settings, n_estimators)
    if model is None:
        model = RandomForestClassifier(n_estimators=0, warm_start=True,
                                       max_depth=settings["max_depth"],
                                       random_state=settings["random_state"])

    def save_checkpoint() -> None:
        # Called on SIGTERM (spot interruption, a stopped job): keep the trees grown so far.
        if getattr(model, "estimators_", None):
            joblib.dump({"model": model, "features": names, "settings": settings}, checkpoint)

    ctx.on_stop(save_checkpoint)

    # Same trees as one fit(n_estimators): scikit-learn keeps the random streams in step.
    while model.n_estimators < n_estimators:
        model.n_estimators = min(model.n_estimators + TREES_PER_STEP, n_estimators)
        model.fit(X_train, y_train)
    print(f"grew {model.n_estimators} trees")
    return model


def _resume(path: Path, names: list[str], settings: dict[str, Any],
            n_estimators: int) -> RandomForestClassifier | None:
    """The checkpointed forest, if a stopped run with the same data and settings left one."""
    if not path.is_file():
        return None
    saved = joblib.load(path)
    model = saved.get("model")
    if (saved.get("features") != names or saved.get("settings") != settings
            or model is None or model.n_estimators > n_estimators):
        print(f"ignoring checkpoint {path.name}: made with other data or settings")
        return None
    print(f"resuming from checkpoint with {model.n_estimators} trees")
    return model
