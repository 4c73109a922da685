"""``[tracking.mlflow]``: the options of the MLflow tracker, validated by mldock's config loader.

The issue that asked for this plugin wrote ``[plugins.mlflow] register_model = "name"``; mldock puts
every backend's options in the table of its concern instead (``[tracking.mlflow]``, next to
``[tracking] uri``), so that is where ``register_model`` lives too.
"""

from __future__ import annotations

from mldock.config.plugin_config import EnvSecret, PluginConfig
from pydantic import Field


class MlflowOptions(PluginConfig):
    """Options of the ``mlflow`` tracker.

    Attributes:
        experiment: the MLflow experiment runs go to; default: the project's name. Created when
            missing; a *deleted* experiment of that name is an error (restore it or pick another).
        register_model: a model registry name; when set, a finished run's ``model`` artifact is
            registered as a new version of it.
        username: MLflow basic-auth user, as ``"env:NAME"``. Default: ``MLFLOW_TRACKING_USERNAME``.
        password: MLflow basic-auth password, as ``"env:NAME"``. Default:
            ``MLFLOW_TRACKING_PASSWORD``.
        request_timeout: seconds one HTTP request to the server may take.
        max_retries: retries of a failed request (MLflow's own backoff between them).
        upload_artifacts: upload artifacts that are local folders/files (the trained model) to
            MLflow's artifact store, not only record their references.
        max_pending_metrics: metric values waiting to be sent before ``log_metrics`` waits for
            the sender (bounded memory when the server is slower than the training loop).
    """

    experiment: str | None = Field(default=None, min_length=1, max_length=500)
    register_model: str | None = Field(default=None, min_length=1, max_length=250)
    username: EnvSecret | None = None
    password: EnvSecret | None = None
    request_timeout: int = Field(default=30, ge=1, le=3600)
    max_retries: int = Field(default=2, ge=0, le=10)
    upload_artifacts: bool = True
    max_pending_metrics: int = Field(default=100_000, ge=1_000, le=10_000_000)
