"""Container-contract names shared by the host and the in-container runtime.

The host (the CLI, core's deployers, the cloud plugins) and the runtime inside the image agree on
these names; each is defined here once, so the two sides cannot drift. Standard library only (the
runtime imports it inside the image); plugins import it as part of mldock's public API.
See ``CONTAINER-CONTRACT.md`` for what each one means.
"""

from __future__ import annotations

__all__ = [
    "ENV_CHECKPOINT_DIR",
    "ENV_HYPERPARAMETERS",
    "ENV_MODEL_DIR",
    "ENV_OBJECTIVE",
    "ENV_OUTPUT_DIR",
    "ENV_PREDICTOR",
    "ENV_PROJECT",
    "ENV_RUN_ID",
    "ENV_TRAIN",
    "MANIFEST_NAME",
    "METRICS_FILE_NAME",
    "METRIC_LINE_PREFIX",
]

MANIFEST_NAME = "mldock-model.json"
"""File written into the model directory after training; marks the model root for serving."""

METRICS_FILE_NAME = "mldock-metrics.jsonl"
"""Metrics a training appends (one JSON object a line) under ``/opt/ml/output/data``."""

METRIC_LINE_PREFIX = "mldock-metric"
"""Start of the log line a training prints per metric (``mldock-metric NAME=VALUE``), which
platforms that read metrics from logs (SageMaker's regex definitions) match."""

ENV_RUN_ID = "MLDOCK_RUN_ID"
"""The run's id, set by whoever starts a container (training, serving, batch)."""

ENV_TRAIN = "MLDOCK_TRAIN"
"""``module:function`` of the training function."""

ENV_PREDICTOR = "MLDOCK_PREDICTOR"
"""``module:object`` of the predictor (else the manifest's ``predictor``)."""

ENV_PROJECT = "MLDOCK_PROJECT"
"""The project's name."""

ENV_MODEL_DIR = "MLDOCK_MODEL_DIR"
"""Overrides the platform's model folder."""

ENV_OUTPUT_DIR = "MLDOCK_OUTPUT_DIR"
"""Overrides the platform's output folder."""

ENV_CHECKPOINT_DIR = "MLDOCK_CHECKPOINT_DIR"
"""Overrides the platform's checkpoint folder."""

ENV_HYPERPARAMETERS = "MLDOCK_HYPERPARAMETERS"
"""Hyperparameters as JSON, for a training run outside a platform's own layout."""

ENV_OBJECTIVE = "MLDOCK_TUNE_OBJECTIVE"
"""The metric a tuner optimizes, set on each trial's container. The runtime then reports that
metric the way the platform's tuner reads it (:mod:`mldock.runtime.objective`): the hypertune
file on Vertex AI, the job's MLflow run on Azure ML (SageMaker reads the log line of every
metric through :func:`mldock.runtime.objective.metric_line_regex`)."""

