"""Vertex AI hyperparameter tuning jobs: ``[tune]`` as a HyperparameterTuningJob (Vizier).

The job is built by pure functions (:func:`tuning_job`, :func:`parameter_specs`) so what is sent
can be read and checked without Google. Each trial is a custom job of the project's image with
the *same* worker pools :mod:`~mldock_gcp.training` builds (machine, replicas, accelerators, spot,
service account, network, CMEK); Vertex appends the trial's values to the container's arguments as
``--<name>=<value>``, which the runtime reads like any hyperparameter, and sets
``CLOUD_ML_TRIAL_ID``. The objective reaches Vizier through the hypertune file the runtime
writes; ``CLOUD_ML_HP_METRIC_TAG`` names the metric to report there (the ``cloudml-hypertune``
convention), so nothing is added to the user's code or requirements.

How the spec maps:

* ``bayesian`` → Vizier's default algorithm (``ALGORITHM_UNSPECIFIED``), ``random`` →
  ``RANDOM_SEARCH``, ``grid`` → ``GRID_SEARCH``; Vertex has no Hyperband.
* ``early_stopping = "median"`` → ``median_automated_stopping_spec``.
* floats → ``DOUBLE`` (``UNIT_LINEAR_SCALE`` / ``UNIT_LOG_SCALE``), ints → ``INTEGER``, stepped
  ranges and numeric categoricals → ``DISCRETE`` (their values), other categoricals →
  ``CATEGORICAL`` (strings; booleans and mixed lists as JSON text, decoded back by the runtime).
* ``[tune.vertex]`` (:class:`~mldock_gcp.config.VertexTuneOptions`): ``max_failed_trials``, which
  measurement counts (last or best), observation noise.

A trial's model is ``<base output>/<trial id>/model`` (Vertex sets ``AIP_MODEL_DIR`` per trial).
:class:`TuningRunner` creates the job, polls it, passes each trial to ``on_trial`` once when it
ends, and cancels the job on Ctrl-C.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

from mldock.errors import MldockError, UsageError
from mldock.interfaces import (
    ProgressSink,
    TrainingJob,
    TrialResult,
    TrialSink,
    TuneRequest,
    TuneResult,
    null_progress,
)

from mldock_gcp.clients import VertexClients
from mldock_gcp.config import VertexOptions
from mldock_gcp.errors import translated
from mldock_gcp.names import labels
from mldock_gcp.training import (
    TERMINAL,
    custom_job,
    effective_options,
    short_state,
    state_name,
)

ALGORITHMS = {"bayesian": "ALGORITHM_UNSPECIFIED", "random": "RANDOM_SEARCH",
              "grid": "GRID_SEARCH"}
ENV_METRIC_TAG = "CLOUD_ML_HP_METRIC_TAG"
"""The metric the trial reports in the hypertune file (``cloudml-hypertune``'s variable)."""
TRIAL_STATUS = {"SUCCEEDED": "finished", "INFEASIBLE": "failed", "ACTIVE": "running",
                "REQUESTED": "running", "STOPPING": "running", "STATE_UNSPECIFIED": "running"}


def text_of(value: Any) -> str:
    """A categorical value as Vertex carries it: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def decoded(value: Any) -> Any:
    """A trial's parameter value as the runtime sees it (JSON text decoded; whole floats of an
    integer or discrete parameter stay floats only when they are not whole)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _discrete(param: Mapping[str, Any]) -> list[float]:
    if param["type"] == "categorical":
        return [float(v) for v in param["values"]]
    step = float(param.get("step") or 1)
    count = int((float(param["high"]) - float(param["low"])) / step + 1e-9) + 1
    return [round(float(param["low"]) + k * step, 12) for k in range(count)]


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def parameter_spec(name: str, param: Mapping[str, Any]) -> dict[str, Any]:
    """One ``StudySpec.ParameterSpec`` (snake_case fields, as proto-plus takes them)."""
    kind = param["type"]
    spec: dict[str, Any] = {"parameter_id": name}
    scale = "UNIT_LOG_SCALE" if param.get("scale") == "log" else "UNIT_LINEAR_SCALE"
    if kind == "categorical" and not _numeric(list(param["values"])):
        spec["categorical_value_spec"] = {"values": [text_of(v) for v in param["values"]]}
        return spec
    if kind == "categorical" or param.get("step") not in (None, 1) or (
            kind == "float" and param.get("step") is not None):
        spec["discrete_value_spec"] = {"values": _discrete(param)}
        if kind != "categorical":
            spec["scale_type"] = scale
        return spec
    if kind == "int":
        spec["integer_value_spec"] = {"min_value": int(param["low"]),
                                      "max_value": int(param["high"])}
    else:
        spec["double_value_spec"] = {"min_value": float(param["low"]),
                                     "max_value": float(param["high"])}
    spec["scale_type"] = scale
    return spec


def parameter_specs(space: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [parameter_spec(name, space[name]) for name in sorted(space)]


def check_request(request: TuneRequest) -> None:
    """Refuse what Vizier has no equivalent for, naming the key (core checks ``[tune]``
    against the record's table first; this guards direct callers)."""
    if request.strategy not in ALGORITHMS:
        raise UsageError(f"tune.strategy: Vertex AI has no {request.strategy!r} strategy (it"
                         f" has: {', '.join(sorted(ALGORITHMS))})",
                         hint="set strategy in [tune.vertex] to one of them")
    if request.early_stopping not in ("none", "median"):
        raise UsageError(f"tune.early_stopping: Vertex AI has no {request.early_stopping!r}"
                         " early stopping (it has: median, none)",
                         hint="set early_stopping in [tune.vertex] to one of them")


def study_spec(request: TuneRequest) -> dict[str, Any]:
    """The ``StudySpec``: the objective, the parameters, the algorithm and early stopping."""
    check_request(request)
    found: dict[str, Any] = {
        "metrics": [{"metric_id": request.objective,
                     "goal": "MAXIMIZE" if request.direction == "maximize" else "MINIMIZE"}],
        "parameters": parameter_specs(request.space),
        "algorithm": ALGORITHMS[request.strategy],
    }
    if request.early_stopping == "median":
        found["median_automated_stopping_spec"] = {"use_elapsed_duration": False}
    extra = request.tune_options
    if extra is not None:
        found["measurement_selection_type"] = f"{extra.measurement.upper()}_MEASUREMENT"
        if extra.observation_noise:
            found["observation_noise"] = extra.observation_noise.upper()
    return found


def tuning_job(request: TuneRequest, options: VertexOptions, *, display_name: str,
               base_output_dir: str, project: str) -> dict[str, Any]:
    """The HyperparameterTuningJob for ``request`` (see the module docstring)."""
    job = TrainingJob(run_id=request.tune_id, image=request.image,
                      hyperparameters=dict(request.hyperparameters), inputs=request.inputs,
                      output_uri=request.output_uri,
                      environment={**dict(request.environment),
                                   ENV_METRIC_TAG: request.objective},
                      options=request.options)
    single = custom_job(job, options, display_name=display_name,
                        base_output_dir=base_output_dir, project=project)
    found: dict[str, Any] = {
        "display_name": display_name,
        "study_spec": study_spec(request),
        "max_trial_count": request.max_trials,
        "parallel_trial_count": request.parallel_trials,
        "trial_job_spec": single["job_spec"],
        "labels": labels(options.labels, project=project, role="tuning",
                         run_id=request.tune_id),
    }
    extra = request.tune_options
    if extra is not None and extra.max_failed_trials is not None:
        found["max_failed_trial_count"] = extra.max_failed_trials
    if "encryption_spec" in single:
        found["encryption_spec"] = single["encryption_spec"]
    return found


# --- reading trials back ------------------------------------------------------------------------


def _epoch(value: Any) -> float | None:
    return value.timestamp() if value is not None and hasattr(value, "timestamp") else None


def trial_of(trial: Any, *, objective: str, static: Mapping[str, Any], base_output_dir: str,
             pruned: bool) -> TrialResult:
    """One ``aiplatform_v1.Trial`` as a :class:`TrialResult`."""
    state = str(getattr(trial.state, "name", trial.state))
    status = TRIAL_STATUS.get(state, "running")
    metrics = {str(m.metric_id): float(m.value) for m in trial.final_measurement.metrics
               if math.isfinite(float(m.value))} if trial.final_measurement else {}
    values = {str(p.parameter_id): decoded(p.value) for p in trial.parameters}
    trial_id = str(trial.id)
    finished = status == "finished"
    return TrialResult(
        number=int(trial_id) - 1 if trial_id.isdigit() else 0,
        job_id=str(trial.custom_job or trial.name),
        status="killed" if finished and pruned else status,
        hyperparameters={**static, **values}, objective=metrics.get(objective),
        pruned=finished and pruned,
        model_uri=f"{base_output_dir.rstrip('/')}/{trial_id}/model" if finished else None,
        metrics=metrics,
        failure_reason=(trial.infeasible_reason or "the trial was infeasible (it failed, or"
                        " reported no objective)") if status == "failed" else None,
        started_at=_epoch(trial.start_time), ended_at=_epoch(trial.end_time))


def best_of(trials: list[TrialResult], direction: str) -> int | None:
    """The finished trial with the best objective (ties: the earliest)."""
    scored = [t for t in trials if t.status == "finished" and t.objective is not None]
    if not scored:
        return None
    sign = 1.0 if direction == "maximize" else -1.0
    return max(scored, key=lambda t: (sign * float(t.objective or 0.0), -t.number)).number


def console_url(project: str, region: str, job_id: str) -> str:
    return (f"https://console.cloud.google.com/vertex-ai/locations/{region}/training/"
            f"{job_id}/cpu?project={project}")


class TuningRunner:
    """Runs one tuning job to its end; ``poll_s`` is the time between two looks at it."""

    def __init__(self, clients: VertexClients, options: VertexOptions, *, project: str,
                 poll_s: float = 30.0):
        self.clients = clients
        self.options = options
        self.project = project
        self.poll_s = poll_s

    def run(self, request: TuneRequest, *, display_name: str, base_output_dir: str,
            progress: ProgressSink = null_progress,
            on_trial: TrialSink | None = None) -> TuneResult:
        options = effective_options(self.options, request.options)
        body = tuning_job(request, options, display_name=display_name,
                          base_output_dir=base_output_dir, project=self.project)
        from google.cloud.aiplatform_v1 import HyperparameterTuningJob

        with translated(f"create hyperparameter tuning job {display_name}",
                        resource=f"location {self.clients.parent}"):
            created = self.clients.jobs.create_hyperparameter_tuning_job(
                parent=self.clients.parent,
                hyperparameter_tuning_job=HyperparameterTuningJob(body))
        name = str(created.name)
        job_id = name.rsplit("/", 1)[-1]
        progress(f"hyperparameter tuning job {display_name} created ({name}):"
                 f" {request.strategy}, {request.max_trials} trials,"
                 f" {request.parallel_trials} at once on {options.machine_type}")
        progress(f"console: {console_url(self.clients.project, self.clients.region, job_id)}")
        follow = _Follower(self, request, name, base_output_dir, progress, on_trial)
        try:
            found = follow.wait()
        except KeyboardInterrupt:
            self._cancel(name, progress)
            raise
        return follow.result(found)

    def _cancel(self, name: str, progress: ProgressSink) -> None:
        job_id = name.rsplit("/", 1)[-1]
        try:
            with translated(f"cancel hyperparameter tuning job {name}",
                            resource=f"hyperparameter tuning job {name}"):
                self.clients.jobs.cancel_hyperparameter_tuning_job(name=name)
            progress(f"cancelling hyperparameter tuning job {job_id}: Vertex AI stops its"
                     " running trials")
        except MldockError as exc:
            progress(f"could not cancel hyperparameter tuning job {job_id}: {exc}")
            progress(f"cancel it with: gcloud ai hp-tuning-jobs cancel {job_id}"
                     f" --region={self.clients.region}")


class _Follower:
    """The polling loop of one job: its state, its trials (each reported once when it ends)."""

    def __init__(self, runner: TuningRunner, request: TuneRequest, name: str,
                 base_output_dir: str, progress: ProgressSink, on_trial: TrialSink | None):
        self.runner = runner
        self.request = request
        self.name = name
        self.base = base_output_dir
        self.progress = progress
        self.on_trial = on_trial
        self.reported: set[str] = set()
        self.stopping: set[str] = set()  # trials Vizier was seen stopping: pruned when they end
        self.trials: list[TrialResult] = []

    def wait(self) -> Any:
        shown: str | None = None
        while True:
            with translated(f"look up hyperparameter tuning job {self.name}",
                            resource=f"hyperparameter tuning job {self.name}"):
                found = self.runner.clients.jobs.get_hyperparameter_tuning_job(name=self.name)
            state = state_name(found.state)
            if state != shown:
                self.progress(f"hyperparameter tuning job {self.name.rsplit('/', 1)[-1]}:"
                              f" {short_state(state)}")
                shown = state
            self.read(found, cancelled=state in ("JOB_STATE_CANCELLING",
                                                 "JOB_STATE_CANCELLED"))
            if state in TERMINAL:
                return found
            time.sleep(self.runner.poll_s)

    def read(self, found: Any, *, cancelled: bool) -> None:
        """The job's trials; each newly ended one goes to ``on_trial``."""
        static = dict(self.request.hyperparameters)
        trials = []
        for trial in found.trials:
            state = str(getattr(trial.state, "name", trial.state))
            if state == "STOPPING" and not cancelled:
                self.stopping.add(str(trial.name))
            trials.append(trial_of(trial, objective=self.request.objective, static=static,
                                   base_output_dir=self.base,
                                   pruned=str(trial.name) in self.stopping))
        self.trials = sorted(trials, key=lambda t: t.number)
        for trial in self.trials:
            if trial.status != "running" and trial.job_id not in self.reported:
                self.reported.add(trial.job_id)
                self.progress(f"trial {trial.number}: {trial.status}"
                              + (" (pruned)" if trial.pruned else "")
                              + (f", {self.request.objective} = {trial.objective:g}"
                                 if trial.objective is not None else ""))
                if self.on_trial is not None:
                    self.on_trial(trial)

    def result(self, found: Any) -> TuneResult:
        state = state_name(found.state)
        status = TERMINAL[state]
        message = (found.error.message or None) if found.error else None
        reason = None
        if status == "failed":
            reason = message or f"Vertex AI reported the tuning job {short_state(state)}"
        elif status == "killed":
            reason = message or "the tuning job was cancelled"
        best = best_of(self.trials, self.request.direction)
        self.progress(f"hyperparameter tuning job {self.name.rsplit('/', 1)[-1]}:"
                      f" {short_state(state)}"
                      + (f", best trial {best}" if best is not None else ", no finished trial"))
        return TuneResult(tune_id=self.request.tune_id, job_id=self.name, status=status,
                          trials=tuple(self.trials), best=best, failure_reason=reason)
