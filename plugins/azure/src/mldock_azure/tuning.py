"""Azure ML sweep jobs: ``[tune]`` as ``command(...).sweep(...)``, followed to its end.

The sweep is built by a pure function (:func:`sweep_job`) so what is sent can be read and checked
without Azure. Its trial is the command job :mod:`~mldock_azure.training` would run (the runtime,
the model output, the channels as mounted inputs, compute, nodes, distribution, environment
variables, tags), with each searched name bound as ``--<name>=${{search_space.<key>}}``: Azure ML
substitutes the trial's value and the runtime reads it like any hyperparameter. The objective is
the metric ``ctx.log_metric`` reports (the runtime logs it to the job's MLflow run, which is what
a sweep's ``primary_metric`` reads).

How the spec maps:

* strategies → ``random`` / ``grid`` / ``bayesian`` sampling (``seed`` → the random sampler's
  seed). Azure ML has no Hyperband.
* floats → ``uniform`` / ``loguniform`` (whose bounds are natural logarithms) / ``quniform``
  (stepped); ints → ``choice`` of their values (exact integers; ``quniform`` beyond 1,000 values
  would hand the code ``3.0``); categoricals → ``choice``. Grid sampling takes choices only.
  Bayesian sampling takes ``choice``, ``uniform`` and ``quniform`` only, so a log-scale range is
  searched there as a ``choice`` of 32 values spaced evenly in log space (said in a progress
  line); it takes no early termination, which is refused naming the key.
* ``early_stopping = "median"`` → a median stopping policy, or ``[tune.azureml] policy``'s
  bandit or truncation policy (:class:`~mldock_azure.config.AzureMLTuneOptions`).
* limits: ``max_trials``, ``parallel_trials``, the sweep's own ``timeout_s``, and each trial's
  ``[deploy.azureml] timeout_s``.

Trials are the sweep's child runs (run history ``runs/<sweep>/children``, named
``<sweep>_<n>``); each one's objective is read from its log as for training, its values from the
sweep's tags (one JSON document per child, as HyperDrive records them), its model is its
``model`` output. The best trial is the sweep's ``best_child_run_id`` when it names one, else the
best objective. Ctrl-C cancels the sweep and re-raises.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from typing import Any

from mldock.errors import MldockError, UsageError
from mldock.interfaces import (
    ProgressSink,
    TrialResult,
    TrialSink,
    TuneRequest,
    TuneResult,
    null_progress,
)
from mldock.runtime.names import ENV_PROJECT, ENV_RUN_ID

from mldock_azure.config import AzureMLOptions
from mldock_azure.errors import translated
from mldock_azure.logs import LogFollower, failure_message, run_details
from mldock_azure.names import experiment_name, tags_for
from mldock_azure.training import (
    TERMINAL,
    distribution_of,
    input_key,
    model_uri,
    training_command,
)

SAMPLERS = ("bayesian", "grid", "random")
MAX_CHOICES = 1000
LOG_POINTS = 32  # an int range with more values is sent as quniform
BAYESIAN_TYPES = {"choice", "uniform", "quniform"}
CHILD = re.compile(r"_(\d+)$")


def distribution(name: str, param: Mapping[str, Any], strategy: str) -> Any:
    """The SDK's search distribution for one neutral parameter (see the module docstring)."""
    from azure.ai.ml.sweep import Choice, LogUniform, QLogUniform, QUniform, Uniform

    kind = param["type"]
    if kind == "categorical":
        return Choice(values=list(param["values"]))
    log = param.get("scale") == "log"
    step = param.get("step")
    if log and strategy == "bayesian":
        return Choice(values=log_points(param))
    if kind == "int":
        values: list[Any] = list(range(int(param["low"]), int(param["high"]) + 1,
                                       int(step or 1)))
        if log and strategy != "grid":
            return QLogUniform(min_value=math.log(param["low"]),
                               max_value=math.log(param["high"]), q=1)
        if len(values) <= MAX_CHOICES or strategy == "grid":
            return Choice(values=values)
        return QUniform(min_value=int(param["low"]), max_value=int(param["high"]),
                        q=int(step or 1))
    if step is not None:
        if strategy == "grid":
            count = int((param["high"] - param["low"]) / step + 1e-9) + 1
            return Choice(values=[round(param["low"] + k * step, 12) for k in range(count)])
        return QUniform(min_value=param["low"], max_value=param["high"], q=step)
    if log:
        return LogUniform(min_value=math.log(param["low"]), max_value=math.log(param["high"]))
    return Uniform(min_value=param["low"], max_value=param["high"])


def log_points(param: Mapping[str, Any]) -> list[Any]:
    """:data:`LOG_POINTS` values spaced evenly in log space from ``low`` to ``high`` (distinct
    integers for an int range): how Bayesian sampling, which has no log scale, searches one."""
    low, high = math.log(param["low"]), math.log(param["high"])
    inner = [math.exp(low + (high - low) * k / (LOG_POINTS - 1)) for k in range(1, LOG_POINTS - 1)]
    if param["type"] == "int":
        return sorted({int(param["low"]), *(round(p) for p in inner), int(param["high"])})
    return [param["low"], *(float(f"{p:.6g}") for p in inner), param["high"]]


def search_space(space: Mapping[str, Mapping[str, Any]], strategy: str) -> dict[str, Any]:
    """Input key -> distribution; refuses what the sampling cannot search, naming the key."""
    found = {}
    for name in sorted(space):
        value = distribution(name, space[name], strategy)
        kind = type(value).__name__.lower()
        if strategy == "bayesian" and kind not in BAYESIAN_TYPES:  # not built above: a guard
            raise UsageError(f"tune.space.{name}: Azure ML's Bayesian sampling cannot search"
                             f" {kind}", hint="use strategy = 'random' in [tune.azureml]")
        if strategy == "grid" and kind != "choice":
            raise UsageError(f"tune.space.{name}: Azure ML's grid sampling takes listed values"
                             " only", hint="list the values of this parameter")
        found[input_key(name)] = value
    if len(set(found)) != len(space):
        raise UsageError(f"tune.space: names {sorted(space)} clash once made Azure ML input"
                         " names", hint="rename the searched hyperparameters")
    return found


def termination(request: TuneRequest) -> Any:
    """The early termination policy, or ``None``."""
    if request.early_stopping == "none":
        return None
    if request.strategy == "bayesian":
        raise UsageError("tune.early_stopping: Azure ML's Bayesian sampling takes no early"
                         " termination", hint="set early_stopping = 'none', or strategy ="
                                              " 'random', in [tune.azureml]")
    from azure.ai.ml.sweep import BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy

    extra = request.tune_options
    policy = extra.policy if extra is not None else "median"
    timing = {"evaluation_interval": extra.evaluation_interval if extra else 1,
              "delay_evaluation": extra.delay_evaluation if extra else 0}
    if policy == "bandit":
        return BanditPolicy(slack_factor=extra.slack_factor, slack_amount=extra.slack_amount,
                            **timing)
    if policy == "truncation":
        return TruncationSelectionPolicy(truncation_percentage=extra.truncation_percentage,
                                         **timing)
    return MedianStoppingPolicy(**timing)


def sampling(request: TuneRequest) -> Any:
    from azure.ai.ml.sweep import RandomSamplingAlgorithm

    if request.strategy == "random" and request.seed is not None:
        return RandomSamplingAlgorithm(seed=request.seed)
    return request.strategy


def sweep_job(request: TuneRequest, options: AzureMLOptions, *, name: str, project: str,
              channels: Mapping[str, str]) -> Any:
    """The sweep for ``request`` (see the module docstring), as ``jobs.create_or_update`` takes
    it; ``channels`` from :func:`mldock_azure.training.input_paths`."""
    from azure.ai.ml import Input, Output, command
    from azure.ai.ml.entities import Environment

    if request.strategy not in SAMPLERS:
        raise UsageError(f"tune.strategy: Azure ML has no {request.strategy!r} sampling (it"
                         f" has: {', '.join(SAMPLERS)})",
                         hint="set strategy in [tune.azureml] to one of them")
    if request.early_stopping not in ("none", "median"):
        raise UsageError(f"tune.early_stopping: Azure ML has no {request.early_stopping!r}"
                         " early stopping here", hint="set early_stopping = 'median' in"
                                                      " [tune.azureml] and pick its policy")
    space = search_space(request.space, request.strategy)
    words = [training_command(channels, dict(request.hyperparameters))]
    words += [f"--{param}=${{{{inputs.{input_key(param)}}}}}" for param in sorted(request.space)]
    environment = {**options.environment, ENV_RUN_ID: request.tune_id, ENV_PROJECT: project,
                   **dict(request.environment)}
    serverless = options.compute is None
    trial = command(
        name=name, display_name=f"{project} {request.tune_id}",
        description=f"mldock tune {request.tune_id} of project {project}",
        experiment_name=experiment_name(project), command=" ".join(words),
        environment=Environment(image=request.image), environment_variables=environment,
        inputs={**{input_key(ch): Input(type="uri_folder", path=path, mode="ro_mount")
                   for ch, path in channels.items()},
                **dict.fromkeys(space, 0)},  # placeholders the distributions replace
        outputs={"model": Output(type="uri_folder", mode="rw_mount")},
        compute=options.compute, instance_type=options.instance_type if serverless else None,
        instance_count=options.instance_count, distribution=distribution_of(options),
        tags=tags_for(project, "tuning", run_id=request.tune_id, extra=options.tags),
        job_tier="Spot" if options.low_priority else None)
    sweep = trial(**space).sweep(
        sampling_algorithm=sampling(request), primary_metric=request.objective,
        goal="Maximize" if request.direction == "maximize" else "Minimize",
        early_termination_policy=termination(request))
    extra = request.tune_options
    sweep.set_limits(max_total_trials=request.max_trials,
                     max_concurrent_trials=request.parallel_trials,
                     timeout=extra.timeout_s if extra is not None else None,
                     trial_timeout=options.timeout_s)
    sweep.name = name
    sweep.experiment_name = experiment_name(project)
    return sweep


# --- reading trials back ------------------------------------------------------------------------

TRIAL_STATUS = {"Completed": "finished", "Failed": "failed", "Canceled": "killed",
                "NotResponding": "failed"}


def decoded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def trial_values(tags: Mapping[str, Any], child: str) -> dict[str, Any]:
    """The values a child ran with, from the sweep's tag for it (a JSON object; HyperDrive's
    keys may carry the ``--`` of the argument)."""
    try:
        found = json.loads(str(tags.get(child) or "{}"))
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(k).lstrip("-"): decoded(v) for k, v in found.items()}


def best_of(trials: list[TrialResult], direction: str, named: str | None) -> int | None:
    """The trial the sweep names best when it is a finished one, else the best objective."""
    for trial in trials:
        if named and trial.job_id == named and trial.status == "finished":
            return trial.number
    scored = [t for t in trials if t.status == "finished" and t.objective is not None]
    if not scored:
        return None
    sign = 1.0 if direction == "maximize" else -1.0
    return max(scored, key=lambda t: (sign * float(t.objective or 0.0), -t.number)).number


class TuningRunner:
    """Runs one sweep to its end; ``poll_s`` is the time between two looks at it."""

    def __init__(self, clients: Any, options: AzureMLOptions, *, project: str,
                 poll_s: float = 30.0):
        self.clients = clients
        self.options = options
        self.project = project
        self.poll_s = poll_s

    def run(self, request: TuneRequest, *, name: str, channels: Mapping[str, str],
            progress: ProgressSink = null_progress,
            on_trial: TrialSink | None = None) -> TuneResult:
        from mldock_azure.training import effective_options

        options = effective_options(self.options, request.options)
        built = sweep_job(request, options, name=name, project=self.project, channels=channels)
        with translated(f"create sweep job {name}", resource=self.clients.workspace_label):
            self.clients.ml.jobs.create_or_update(built)
        where = options.compute or f"serverless {options.instance_type}"
        progress(f"sweep job {name} created: {request.strategy} sampling, {request.max_trials}"
                 f" trials, {request.parallel_trials} at once on {where}")
        if request.strategy == "bayesian":
            for param in sorted(n for n, p in request.space.items() if p.get("scale") == "log"):
                progress(f"tune.space.{param}: Azure ML's Bayesian sampling has no log scale:"
                         f" searching {LOG_POINTS} values spaced evenly in log space")
        follow = _Follower(self, request, name, progress, on_trial)
        try:
            status = follow.wait()
        except KeyboardInterrupt:
            self._cancel(name, progress)
            raise
        return follow.result(status)

    def _cancel(self, name: str, progress: ProgressSink) -> None:
        try:
            with translated(f"cancel sweep job {name}", resource=f"job {name!r}"):
                self.clients.ml.jobs.begin_cancel(name)
            progress(f"canceling sweep job {name}: Azure ML stops its running trials")
        except MldockError as exc:
            scope = f"-g {self.options.resource_group} -w {self.options.workspace}"
            progress(f"could not cancel sweep job {name}: {exc}")
            progress(f"cancel it with: az ml job cancel -n {name} {scope}")


class _Follower:
    """The polling loop of one sweep: its status, its children (each reported once it ends)."""

    def __init__(self, runner: TuningRunner, request: TuneRequest, name: str,
                 progress: ProgressSink, on_trial: TrialSink | None):
        self.runner = runner
        self.clients = runner.clients
        self.request = request
        self.name = name
        self.progress = progress
        self.on_trial = on_trial
        self.done: dict[str, TrialResult] = {}
        self.tags: dict[str, Any] = {}
        self.properties: dict[str, Any] = {}

    def wait(self) -> str:
        shown: str | None = None
        while True:
            with translated(f"read sweep job {self.name}", resource=f"job {self.name!r}"):
                job = self.clients.ml.jobs.get(self.name)
            status = str(getattr(job.status, "value", job.status) or "")
            self.tags = dict(job.tags or {})
            self.properties = dict(getattr(job, "properties", None) or {})
            if status != shown:
                self.progress(f"{self.name}: status {status}")
                shown = status
            self.poll(canceled=status in ("Canceled", "CancelRequested"))
            if status in TERMINAL:
                return status
            time.sleep(self.runner.poll_s)

    def children(self) -> list[dict[str, Any]]:
        url = self.clients.run_url(self.name) + "/children"
        found: list[dict[str, Any]] = []
        while url:
            with translated(f"list the trials of sweep job {self.name}", endpoint=url):
                status, body = self.clients.get(url)
            if status == 404:
                return found
            if status != 200:
                raise MldockError(f"cannot list the trials of sweep job {self.name}: the run"
                                  f" history answered HTTP {status}", hint="retry; the sweep"
                                  " itself is not affected")
            page = json.loads(body or b"{}")
            found += list(page.get("value") or [])
            url = page.get("nextLink") or ""
        return found

    def poll(self, *, canceled: bool) -> None:
        """Each child that ended since the last look becomes a trial, passed to ``on_trial``."""
        pruning = self.request.early_stopping != "none" and not canceled
        for child in sorted(self.children(), key=lambda c: _number(str(c.get("runId")))):
            name = str(child.get("runId") or "")
            status = str(child.get("status") or "")
            if status not in TRIAL_STATUS or name in self.done:
                continue
            trial = self._trial(name, status, pruned=pruning and status == "Canceled")
            self.done[name] = trial
            self.progress(f"trial {trial.number} ({name}): {trial.status}"
                          + (" (pruned)" if trial.pruned else "")
                          + (f", {self.request.objective} = {trial.objective:g}"
                             if trial.objective is not None else ""))
            if self.on_trial is not None:
                self.on_trial(trial)

    def _trial(self, name: str, status: str, *, pruned: bool) -> TrialResult:
        latest: dict[str, float] = {}

        def sink(metrics: Any) -> None:
            latest.update({m.key: m.value for m in metrics})

        details = run_details(self.clients, name)
        LogFollower(self.clients, name, null_progress, sink).poll(details, final=True)
        outcome = TRIAL_STATUS[status]
        return TrialResult(
            number=_number(name), job_id=name, status=outcome,
            hyperparameters={**dict(self.request.hyperparameters),
                             **trial_values(self.tags, name)},
            objective=latest.get(self.request.objective), pruned=pruned,
            model_uri=model_uri(name) if outcome == "finished" else None, metrics=latest,
            failure_reason=(failure_message(details) or f"the trial ended {status}")
            if outcome == "failed" else None)

    def result(self, status: str) -> TuneResult:
        outcome = TERMINAL[status]
        self.poll(canceled=status == "Canceled")
        trials = sorted(self.done.values(), key=lambda t: t.number)
        best = best_of(trials, self.request.direction, self.properties.get("best_child_run_id"))
        reason = None
        if outcome != "finished":
            reason = failure_message(run_details(self.clients, self.name)) or (
                "the sweep was canceled" if outcome == "killed" else f"the sweep ended {status}")
        self.progress(f"sweep job {self.name}: {status}"
                      + (f", best trial {best}" if best is not None else ", no finished trial"))
        return TuneResult(tune_id=self.request.tune_id, job_id=self.name, status=outcome,
                          trials=tuple(trials), best=best, failure_reason=reason)


def _number(name: str) -> int:
    found = CHILD.search(name)
    return int(found[1]) if found else 0
