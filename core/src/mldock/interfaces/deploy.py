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

# re-exported: the support table lives with the records (plugins' entry-point modules declare it
# without importing this package)
from mldock.records import EARLY_STOPPING as EARLY_STOPPING
from mldock.records import TUNE_STRATEGIES as TUNE_STRATEGIES
from mldock.records import TuningSupport as TuningSupport

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


@dataclass(frozen=True)
class TuneRequest:
    """A hyperparameter search to run on the platform's own tuner (``mldock --env X tune``).

    Core builds it from ``[tune]`` with the deployer's ``[tune.<deployer>]`` overrides applied
    and checked against its :class:`TuningSupport`, so every value here is one the platform has.

    Attributes:
        tune_id: the parent run of the search; trials become its child runs.
        image: the pushed image (``repo@sha256:…``), as for :meth:`Deployer.train`.
        objective: the metric name the user's code logs with ``ctx.log_metric``.
        direction: ``"maximize"`` or ``"minimize"``.
        space: parameter name -> platform-neutral JSON (:mod:`mldock.tuning.space`):
            ``{"type": "float", "low": 0.001, "high": 0.1, "scale": "log"}``,
            ``{"type": "int", "low": 2, "high": 8, "step": 2, "scale": "linear"}``,
            ``{"type": "categorical", "values": ["adam", "sgd"]}``.
        strategy: one of :data:`TUNE_STRATEGIES`.
        early_stopping: one of :data:`EARLY_STOPPING`.
        max_trials: how many trials in all.
        parallel_trials: how many at once.
        hyperparameters: the fixed hyperparameters every trial gets (``[hyperparameters]`` minus
            the searched names); a trial's values are these plus its sampled ones.
        inputs: channel name -> storage URI, staged as for training.
        output_uri: a prefix under which each trial's outputs go (``<output_uri>/<trial job>``).
        environment: extra container variables (mldock's own, e.g. the objective's name for the
            runtime's reporting: :data:`mldock.runtime.names.ENV_OBJECTIVE`).
        options: the deployer's training options (instance type, spot, max runtime…), as in
            :attr:`TrainingJob.options`.
        tune_options: the validated platform-only keys of ``[tune.<deployer>]`` (an instance of
            :attr:`TuningSupport.options_model`), or ``None``.
        seed: a seed for the search where the platform takes one, else ``None``.
    """

    tune_id: str
    image: str
    objective: str
    direction: str
    space: Mapping[str, Mapping[str, Any]]
    strategy: str = "bayesian"
    early_stopping: str = "none"
    max_trials: int = 10
    parallel_trials: int = 1
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, str] = field(default_factory=dict)
    output_uri: str = ""
    environment: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    tune_options: Any = None
    seed: int | None = None


@dataclass(frozen=True)
class TrialResult:
    """One trial of a search, as the tuner reports it.

    Attributes:
        number: the trial's 0-based number within the search.
        job_id: the platform's job id of the trial (a training job, a Vertex trial, a child run).
        status: ``"finished"``, ``"failed"``, ``"killed"`` (stopped early or cancelled) or
            ``"running"`` when reported before the search ended.
        hyperparameters: the values this trial ran with (fixed plus sampled), decoded.
        objective: the final objective value, or ``None`` when the trial reported none.
        pruned: whether the tuner stopped it early (early stopping), not a failure.
        model_uri: where the trial's trained model is (``s3://…/model.tar.gz``…), or ``None``.
        metrics: the last value of every metric the platform recorded for the trial.
        failure_reason: the platform's failure text for a failed trial.
        started_at, ended_at: epoch seconds, where known.
    """

    number: int
    job_id: str
    status: str
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    objective: float | None = None
    pruned: bool = False
    model_uri: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    failure_reason: str | None = None
    started_at: float | None = None
    ended_at: float | None = None


@dataclass(frozen=True)
class TuneResult:
    """How a search ended: its trials and which one is best.

    Attributes:
        tune_id: the request's ``tune_id``.
        job_id: the platform's tuning job id.
        status: ``"finished"``, ``"failed"`` or ``"killed"``.
        trials: every trial, in number order.
        best: the number of the best finished trial by the objective and direction, or ``None``.
        failure_reason: the platform's text when the search itself failed.
    """

    tune_id: str
    job_id: str
    status: str
    trials: tuple[TrialResult, ...] = ()
    best: int | None = None
    failure_reason: str | None = None

    def best_trial(self) -> TrialResult | None:
        """The best trial's record, or ``None``."""
        return next((t for t in self.trials if t.number == self.best), None)


TrialSink = Callable[[TrialResult], None]
"""Receives each trial as it ends (or all at once when the search ends), so core records it."""


class Deployer(ABC):
    """Runs training jobs and manages endpoints on one target.

    Capabilities: ``training``, ``serving``, ``batch``, ``distributed``, ``spot``, ``registry``,
    ``tuning``. A deployer without ``training`` raises ``NotImplementedError`` from :meth:`train`,
    and likewise for ``serving`` and ``tuning`` (:meth:`tune`).
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

    def tune(self, request: TuneRequest, *, progress: ProgressSink = null_progress,
             on_trial: TrialSink | None = None) -> TuneResult:
        """Run a hyperparameter search on the platform's own tuner, to its end (``tuning``).

        Map ``request`` onto the platform's tuner (SageMaker HyperParameterTuningJob, Vertex
        HyperparameterTuningJob, Azure ML sweep job), create it, and follow it: pass each trial
        to ``on_trial`` once, when it ends (core records it as a child run of ``tune_id`` with
        its ``job_id``), and return every trial with the best one named. Each trial's container
        gets ``request.environment``, so the runtime reports the objective the way this
        platform's tuner reads it. Ctrl-C (``KeyboardInterrupt``) stops the tuning job on the
        platform and re-raises. The deployer's record declares what it supports in
        ``DeployerRecord.tuning`` (:class:`TuningSupport`); core never sends anything else.
        """
        raise NotImplementedError(f"{type(self).__name__} does not run tuning jobs")

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
