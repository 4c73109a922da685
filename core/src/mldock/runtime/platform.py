"""Which platform is this container running on? One table, first match wins.

The same image runs on SageMaker, Vertex AI, Azure ML and locally; each platform announces itself
through files or environment variables (CONTAINER-CONTRACT.md, "Detecting the platform").
``MLDOCK_PLATFORM`` overrides detection, which is what the local backends and tests use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

SAGEMAKER = "sagemaker"
VERTEX = "vertex"
AZUREML = "azureml"
LOCAL = "local"
PLATFORMS = (SAGEMAKER, VERTEX, AZUREML, LOCAL)


def opt_ml(env: Mapping[str, str] | None = None) -> Path:
    """The SageMaker root, ``/opt/ml`` unless ``MLDOCK_OPT_ML`` points elsewhere (tests)."""
    env = os.environ if env is None else env
    return Path(env.get("MLDOCK_OPT_ML") or "/opt/ml")


def gcs_root(env: Mapping[str, str] | None = None) -> Path:
    """Where Vertex AI mounts Cloud Storage (``/gcs``), unless ``MLDOCK_GCS_ROOT`` says otherwise."""
    env = os.environ if env is None else env
    return Path(env.get("MLDOCK_GCS_ROOT") or "/gcs")


def _override(env: Mapping[str, str]) -> str | None:
    value = (env.get("MLDOCK_PLATFORM") or "").strip().lower()
    if not value:
        return None
    if value not in PLATFORMS:
        raise ValueError(f"MLDOCK_PLATFORM={value!r} is not one of {', '.join(PLATFORMS)}")
    return value


def detect_training_platform(env: Mapping[str, str] | None = None) -> str:
    """The platform running a training job (contract table, row "train")."""
    env = os.environ if env is None else env
    forced = _override(env)
    if forced:
        return forced
    if (opt_ml(env) / "input" / "config" / "resourceconfig.json").is_file() \
            or env.get("TRAINING_JOB_ARN"):
        return SAGEMAKER
    if env.get("CLOUD_ML_JOB_ID") or env.get("CLUSTER_SPEC") or env.get("AIP_MODEL_DIR"):
        return VERTEX
    if env.get("AZUREML_RUN_ID"):
        return AZUREML
    return LOCAL


def detect_serving_platform(env: Mapping[str, str] | None = None, *,
                            serve_argument: bool = False) -> str:
    """The platform running a serving container (contract table, row "serve").

    ``serve_argument`` is true when the container was started with an explicit ``serve`` argument,
    which is how SageMaker starts it (``docker run IMAGE serve``) with ``/opt/ml/model`` mounted.
    """
    env = os.environ if env is None else env
    forced = _override(env)
    if forced:
        return forced
    if (serve_argument and (opt_ml(env) / "model").is_dir()) \
            or env.get("SAGEMAKER_BIND_TO_PORT") or env.get("SAGEMAKER_BATCH"):
        return SAGEMAKER
    if (env.get("AIP_MODE") or "").upper() == "PREDICTION":
        return VERTEX
    if env.get("AZUREML_MODEL_DIR"):
        return AZUREML
    return LOCAL
