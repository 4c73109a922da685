"""Deployers run training jobs and serving endpoints on one target (local Docker, SageMaker, …).

The serving half follows the shape of MLflow's deployment client (create/update, delete, get, list,
predict) so that it feels familiar.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mldock.interfaces.common import HealthCheck, ProgressSink, null_progress
from mldock.interfaces.tracking import Metric

MetricsSink = Callable[[Sequence[Metric]], None]
"""Receives metrics a training job logs, while it runs (the local deployer tails them live)."""


@dataclass(frozen=True)
class TrainingJob:
    """A training job to run in the project's image.

    Attributes:
        run_id: the tracked run this job belongs to.
        image: the image reference (pushed reference for cloud targets).
        hyperparameters: decoded values; deployers encode them as their platform wants.
        inputs: channel name -> URI or local path.
        output_uri: where the model and outputs go (storage URI or local folder).
        environment: extra environment variables for the container.
        options: target-specific settings (instance type and count, spot, max runtime, …).
    """

    run_id: str
    image: str
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, str] = field(default_factory=dict)
    output_uri: str = ""
    environment: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingResult:
    """How a training job ended. ``model_uri`` points at the trained model when it succeeded."""

    run_id: str
    status: str  # "finished", "failed" or "killed"
    job_id: str
    model_uri: str | None = None
    failure_reason: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistryTarget:
    """Where a remote target wants the image pushed, with credentials fetched just now.

    Attributes:
        repository: ``HOST/REPO`` without tag (the image keeps its own input-hash tag). An
            image whose reference already names ``HOST`` is taken as pullable as it is.
        auth: ``{"username": …, "password": …}`` for the docker SDK, or ``None`` to use the
            engine's own login. Tokens expire (ECR: 12 h), so deployers fetch them per call.
    """

    repository: str
    auth: Mapping[str, str] | None = None


@dataclass(frozen=True)
class BatchRequest:
    """A batch prediction job over stored data (SageMaker batch transform, Vertex batch…)."""

    run_id: str
    image: str
    model_uri: str
    input_uri: str
    output_uri: str
    content_type: str = "application/json"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResult:
    """How a batch job ended; predictions are under ``output_uri``."""

    job_id: str
    status: str
    output_uri: str
    failure_reason: str | None = None


@dataclass(frozen=True)
class DeployRequest:
    """An endpoint to create, or to update in place when ``name`` exists."""

    name: str
    image: str
    model_uri: str
    run_id: str
    environment: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Deployment:
    """A serving endpoint as the target reports it."""

    name: str
    url: str
    status: str
    run_id: str | None = None
    image: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Prediction:
    """An endpoint's answer: raw body and its content type."""

    body: bytes
    content_type: str
    status: int = 200


class Deployer(ABC):
    """Runs training jobs and manages endpoints on one target.

    Capabilities: ``training``, ``serving``, ``batch``, ``distributed``, ``spot``, ``registry``.
    A deployer without ``training`` raises ``NotImplementedError`` from :meth:`train`, and likewise
    for ``serving``.
    """

    # --- training -----------------------------------------------------------------------------
    def train(self, job: TrainingJob, *, progress: ProgressSink = null_progress,
              on_metrics: MetricsSink | None = None) -> TrainingResult:
        """Run a training job to its end, streaming its logs to ``progress``.

        Metrics the job logs are passed to ``on_metrics`` as they arrive where the target allows
        it (locally: tailed from the metrics file), else in one call when the job ends. A job
        stopped by a signal ends with status ``killed``; a raising ``train`` with ``failed`` and
        the platform's failure text in ``failure_reason``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not run training jobs")

    def registry_target(self, image: str) -> RegistryTarget | None:
        """Where ``image`` must be pushed before this target can run it, or ``None`` (local).

        Deployers with the ``registry`` capability return the repository (created if missing)
        and fresh credentials (tokens expire: fetch them on every call, never store them). This
        is a deployer's whole part in pushing: core (:func:`mldock.publish.push_for_target`)
        pushes with the configured builder for ``train``, ``deploy``, ``batch`` and ``push``,
        and hands :meth:`train`, :meth:`deploy` and :meth:`batch` ``repo@sha256:…`` (or an
        image already in the target's registry, as it is). A deployer never pushes itself.
        """
        return None

    def batch(self, request: BatchRequest, *,
              progress: ProgressSink = null_progress) -> BatchResult:
        """Run a batch prediction job to its end (capability ``batch``)."""
        raise NotImplementedError(f"{type(self).__name__} does not run batch jobs")

    # --- serving ------------------------------------------------------------------------------
    @abstractmethod
    def deploy(self, request: DeployRequest, *,
               progress: ProgressSink = null_progress) -> Deployment:
        """Create the endpoint, or update it in place; return once it is ready."""

    @abstractmethod
    def undeploy(self, name: str) -> None:
        """Delete the endpoint; raises :class:`mldock.errors.NotFoundError` if there is none."""

    @abstractmethod
    def get(self, name: str) -> Deployment:
        """One endpoint; raises :class:`mldock.errors.NotFoundError` if there is none."""

    @abstractmethod
    def list(self) -> builtins.list[Deployment]:  # ``list`` is this method here
        """Endpoints this deployer manages, sorted by name."""

    @abstractmethod
    def predict(self, name: str, body: bytes, *, content_type: str = "application/json",
                accept: str = "application/json") -> Prediction:
        """Send one request to the endpoint."""

    def check(self) -> builtins.list[HealthCheck]:
        """Health checks for ``mldock doctor`` (credentials, reachability). Default: none."""
        return []
