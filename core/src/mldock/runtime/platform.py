"""Which platform is this container running on, and should a container without a command train?

The same image runs on SageMaker, Vertex AI, Azure ML and locally; each platform (and each
platform's SDK local mode) announces itself through files or environment variables. The rules
follow what they really set (docs/container.md, "What each platform sets"), not only what their
documentation promises: Vertex's local mode sets ``AIP_HTTP_PORT`` and friends but no
``AIP_MODE``; SageMaker SDK 3.x local mode starts a training container with no command.
``MLDOCK_PLATFORM`` overrides the platform, which is what the local backends and tests use.
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
    """Where Vertex AI mounts Cloud Storage (``/gcs``) unless ``MLDOCK_GCS_ROOT`` says otherwise."""
    env = os.environ if env is None else env
    return Path(env.get("MLDOCK_GCS_ROOT") or "/gcs")


def _override(env: Mapping[str, str]) -> str | None:
    value = (env.get("MLDOCK_PLATFORM") or "").strip().lower()
    if not value:
        return None
    if value not in PLATFORMS:
        raise ValueError(f"MLDOCK_PLATFORM={value!r} is not one of {', '.join(PLATFORMS)}")
    return value


# Variables Vertex AI sets on a serving container. Its own local mode
# (LocalModel.deploy_to_local_endpoint) sets the port, routes and storage URI but not AIP_MODE,
# so any of them means Vertex.
VERTEX_SERVING_VARS = ("AIP_MODE", "AIP_HTTP_PORT", "AIP_HEALTH_ROUTE", "AIP_PREDICT_ROUTE",
                       "AIP_STORAGE_URI", "AIP_DEPLOYED_MODEL_ID", "AIP_ENDPOINT_ID")
VERTEX_TRAINING_VARS = ("CLOUD_ML_JOB_ID", "CLUSTER_SPEC", "AIP_MODEL_DIR", "AIP_CHECKPOINT_DIR",
                        "AIP_TENSORBOARD_LOG_DIR", "AIP_TRAINING_DATA_URI")
SAGEMAKER_TRAINING_VARS = ("TRAINING_JOB_ARN", "TRAINING_JOB_NAME")
AZUREML_SERVING_VARS = ("AZUREML_MODEL_DIR", "AZUREML_ENTRY_SCRIPT", "AZUREML_SOURCE_DIRECTORY")


def _any(env: Mapping[str, str], names: tuple[str, ...]) -> bool:
    return any((env.get(name) or "").strip() for name in names)


def _any_prefixed(env: Mapping[str, str], prefix: str) -> bool:
    return any(key.startswith(prefix) and (value or "").strip() for key, value in env.items())


def sagemaker_training_evidence(env: Mapping[str, str] | None = None) -> str | None:
    """Why this looks like a SageMaker training container, or None.

    SageMaker (and both SDKs' local modes) write ``resourceconfig.json`` and
    ``hyperparameters.json`` under ``/opt/ml/input/config`` and set ``TRAINING_JOB_NAME``
    (the cloud also ``TRAINING_JOB_ARN``). SageMaker hosting writes none of these.
    """
    env = os.environ if env is None else env
    config = opt_ml(env) / "input" / "config"
    for name in ("resourceconfig.json", "hyperparameters.json"):
        if (config / name).is_file():
            return str(config / name)
    for name in SAGEMAKER_TRAINING_VARS:
        if (env.get(name) or "").strip():
            return name
    return None


def detect_training_platform(env: Mapping[str, str] | None = None) -> str:
    """The platform running a training job (first match wins)."""
    env = os.environ if env is None else env
    forced = _override(env)
    if forced:
        return forced
    if sagemaker_training_evidence(env):
        return SAGEMAKER
    if _any(env, VERTEX_TRAINING_VARS):
        return VERTEX
    if _any_prefixed(env, "AZUREML_"):
        return AZUREML
    return LOCAL


def detect_serving_platform(env: Mapping[str, str] | None = None, *,
                            serve_argument: bool = False) -> str:
    """The platform running a serving container (first match wins).

    SageMaker's own variables first, then any Vertex ``AIP_*`` serving variable, then any
    ``AZUREML_*`` variable; an explicit ``serve`` argument with ``/opt/ml/model`` present is how
    SageMaker starts a container without those variables (``docker run IMAGE serve``).
    """
    env = os.environ if env is None else env
    forced = _override(env)
    if forced:
        return forced
    if _any(env, ("SAGEMAKER_BIND_TO_PORT", "SAGEMAKER_BATCH")):
        return SAGEMAKER
    if _any(env, VERTEX_SERVING_VARS):
        return VERTEX
    if _any_prefixed(env, "AZUREML_"):
        return AZUREML
    if serve_argument and (opt_ml(env) / "model").is_dir():
        return SAGEMAKER
    return LOCAL


def is_training_environment(env: Mapping[str, str] | None = None) -> bool:
    """Does the environment say "training job"? Decides what a container with no command does.

    Serving variables win, so a serving container is never made to train; ``MLDOCK_PLATFORM``
    names a platform, not a mode, so it plays no part here.
    """
    env = os.environ if env is None else env
    if _any(env, ("SAGEMAKER_BIND_TO_PORT", "SAGEMAKER_BATCH", *VERTEX_SERVING_VARS,
                  *AZUREML_SERVING_VARS)):
        return False
    return bool(sagemaker_training_evidence(env) or _any(env, VERTEX_TRAINING_VARS)
                or _any(env, ("AZUREML_RUN_ID",)))
