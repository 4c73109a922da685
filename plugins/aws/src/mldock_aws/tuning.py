"""SageMaker hyperparameter tuning jobs: ``[tune]`` as a HyperParameterTuningJob, followed to the
end.

The request is built by pure functions (:func:`tuning_request`, :func:`parameter_ranges`) so what
is sent can be read and checked without AWS. The trials are training jobs of the project's image
exactly as :mod:`~mldock_aws.training` builds them (same channels, instances, spot, VPC, KMS),
with the searched names as ranges and the fixed ones as ``StaticHyperParameters``. SageMaker reads
the objective from each trial's log with the regex of the runtime's ``mldock-metric`` line, so
``ctx.log_metric`` is all the user's code does.

How the spec maps:

* strategies ``bayesian``/``random``/``grid``/``hyperband`` → ``Bayesian``/``Random``/``Grid``/
  ``Hyperband``. SageMaker's grid takes categorical parameters only: integer ranges are sent as
  the list of their values, and the grid's size is SageMaker's to count (no
  ``MaxNumberOfTrainingJobs``).
* ``early_stopping = "median"`` → ``TrainingJobEarlyStoppingType = Auto`` (SageMaker stops a trial
  whose objective is worse than the median of earlier trials at the same step); Hyperband stops
  trials itself and takes ``Off``.
* floats and ints → continuous and integer ranges, ``Linear`` or ``Logarithmic``; categoricals →
  strings (numbers as JSON text, which the runtime decodes back, as for every hyperparameter).
* ``seed`` → ``RandomSeed``; ``[tune.sagemaker]`` (:class:`~mldock_aws.config.SageMakerTuneOptions`)
  → completion criteria, the job's own time limit, Hyperband's resources, warm start.

:class:`TuningRunner` creates the job and polls it; trials are read with
``ListTrainingJobsForHyperParameterTuningJob`` and each one is passed to ``on_trial`` once, when it
ends. Ctrl-C stops the tuning job (StopHyperParameterTuningJob: SageMaker stops its running
trials) and re-raises.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
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

from mldock_aws.clients import AwsClients
from mldock_aws.config import SageMakerOptions
from mldock_aws.errors import translated
from mldock_aws.logs import metric_definitions
from mldock_aws.names import TAG_PROJECT, TAG_ROLE, TAG_RUN, clean, tag_list
from mldock_aws.training import effective_options, training_request

STRATEGIES = {"bayesian": "Bayesian", "random": "Random", "grid": "Grid",
              "hyperband": "Hyperband"}
TERMINAL = {"Completed": "finished", "Failed": "failed", "Stopped": "killed"}
TRIAL_STATUS = {"Completed": "finished", "Failed": "failed", "Stopped": "killed",
                "Stopping": "running", "InProgress": "running"}
MAX_NAME = 32  # HyperParameterTuningJobName
MAX_RANGES = 30  # parameters per range type, and in all
MAX_VALUES = 30  # values of one categorical parameter
TRIAL_NAME = re.compile(r"-(\d{3})-[0-9a-f]{8}$")


def tuning_job_name(project: str, tune_id: str) -> str:
    """``<project>-<tune id>`` cut to SageMaker's 32 characters (the project is shortened)."""
    suffix = clean(tune_id)[: MAX_NAME - 2]
    base = clean(project) or "mldock"
    room = MAX_NAME - len(suffix) - 1
    return f"{base[:room].rstrip('-')}-{suffix}" if room > 0 else suffix


def text_of(value: Any) -> str:
    """A hyperparameter as SageMaker carries it: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def decoded(text: str) -> Any:
    """What the runtime makes of a SageMaker hyperparameter (JSON where it parses)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _number(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def _categorical(name: str, values: list[Any]) -> dict[str, Any]:
    if len(values) > MAX_VALUES:
        raise UsageError(f"tune.space.{name}: {len(values)} values; a SageMaker categorical"
                         f" (and a grid dimension) takes at most {MAX_VALUES}",
                         hint="use fewer values, or a range and the bayesian or random strategy")
    return {"Name": name, "Values": [text_of(v) for v in values]}


def parameter_ranges(space: Mapping[str, Mapping[str, Any]], strategy: str) -> dict[str, Any]:
    """``ParameterRanges`` for the platform-neutral ``space`` of a :class:`TuneRequest`."""
    ranges: dict[str, list[dict[str, Any]]] = {"IntegerParameterRanges": [],
                                                "ContinuousParameterRanges": [],
                                                "CategoricalParameterRanges": []}
    for name, param in sorted(space.items()):
        kind = param["type"]
        if kind == "categorical" or (strategy == "grid" and kind == "int"):
            values = (list(param["values"]) if kind == "categorical" else
                      list(range(param["low"], param["high"] + 1, param.get("step", 1))))
            ranges["CategoricalParameterRanges"].append(_categorical(name, values))
            continue
        if strategy == "grid":
            raise UsageError(f"tune.space.{name}: SageMaker's grid search takes listed values"
                             " only", hint="list the values of this parameter")
        scale = "Logarithmic" if param.get("scale") == "log" else "Linear"
        key = "IntegerParameterRanges" if kind == "int" else "ContinuousParameterRanges"
        ranges[key].append({"Name": name, "MinValue": _number(param["low"]),
                            "MaxValue": _number(param["high"]), "ScalingType": scale})
    if sum(len(items) for items in ranges.values()) > MAX_RANGES:
        raise UsageError(f"tune.space: {len(space)} parameters; SageMaker searches at most"
                         f" {MAX_RANGES}", hint="search fewer, and fix the rest in"
                                                " [hyperparameters]")
    return {key: items for key, items in ranges.items() if items}


def trial_definition(request: TuneRequest, options: SageMakerOptions, *, job_name: str,
                     output_path: str, project: str) -> dict[str, Any]:
    """``TrainingJobDefinition``: the training request of :mod:`~mldock_aws.training` for the
    same image and options, minus what belongs to one job (name, tags), with the objective's
    metric definition added and the fixed hyperparameters as ``StaticHyperParameters``."""
    job = TrainingJob(run_id=request.tune_id, image=request.image,
                      hyperparameters=dict(request.hyperparameters), inputs=request.inputs,
                      output_uri=request.output_uri, environment=request.environment,
                      options=request.options)
    single = training_request(job, options, job_name=job_name, output_path=output_path,
                              project=project)
    names = [request.objective, *(m for m in options.metrics if m != request.objective)]
    single["AlgorithmSpecification"]["MetricDefinitions"] = metric_definitions(names)
    definition = {key: value for key, value in single.items()
                  if key not in ("TrainingJobName", "Tags", "HyperParameters")}
    definition["StaticHyperParameters"] = single["HyperParameters"]
    return definition


def tuning_request(request: TuneRequest, options: SageMakerOptions, *, job_name: str,
                   output_path: str, project: str) -> dict[str, Any]:
    """The CreateHyperParameterTuningJob parameters for ``request`` (see the module docstring)."""
    if request.early_stopping == "hyperband" and request.strategy != "hyperband":
        raise UsageError("tune.early_stopping: SageMaker stops trials the Hyperband way only"
                         " with strategy = 'hyperband'",
                         hint="set early_stopping = 'median' (SageMaker's Auto), or strategy ="
                              " 'hyperband', in [tune.sagemaker]")
    extra = request.tune_options
    limits: dict[str, Any] = {"MaxParallelTrainingJobs": request.parallel_trials}
    if request.strategy != "grid":
        limits["MaxNumberOfTrainingJobs"] = request.max_trials
    config: dict[str, Any] = {
        "Strategy": STRATEGIES[request.strategy],
        "HyperParameterTuningJobObjective": {
            "Type": "Maximize" if request.direction == "maximize" else "Minimize",
            "MetricName": request.objective},
        "ResourceLimits": limits,
        "ParameterRanges": parameter_ranges(request.space, request.strategy),
        "TrainingJobEarlyStoppingType": ("Auto" if request.early_stopping == "median"
                                         and request.strategy != "hyperband" else "Off"),
    }
    if request.seed is not None:
        config["RandomSeed"] = request.seed
    if extra is not None:
        _apply_options(config, limits, extra, request.strategy)
    found: dict[str, Any] = {
        "HyperParameterTuningJobName": job_name,
        "HyperParameterTuningJobConfig": config,
        "TrainingJobDefinition": trial_definition(request, options, job_name=job_name,
                                                  output_path=output_path, project=project),
        "Tags": tag_list({**options.tags, TAG_RUN: request.tune_id, TAG_PROJECT: project,
                          TAG_ROLE: "tuning"}),
    }
    if extra is not None and extra.warm_start_from:
        found["WarmStartConfig"] = {
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": name}
                                               for name in extra.warm_start_from],
            "WarmStartType": extra.warm_start_type}
    return found


def _apply_options(config: dict[str, Any], limits: dict[str, Any], extra: Any,
                   strategy: str) -> None:
    """``[tune.sagemaker]``'s keys into the job's config."""
    if extra.max_runtime_s is not None:
        limits["MaxRuntimeInSeconds"] = extra.max_runtime_s
    criteria: dict[str, Any] = {}
    if extra.target_objective is not None:
        criteria["TargetObjectiveMetricValue"] = extra.target_objective
    if extra.stop_when_not_improving is not None:
        criteria["BestObjectiveNotImproving"] = {
            "MaxNumberOfTrainingJobsNotImproving": extra.stop_when_not_improving}
    if criteria:
        config["TuningJobCompletionCriteria"] = criteria
    band = {key: value for key, value in (("MinResource", extra.hyperband_min_resource),
                                          ("MaxResource", extra.hyperband_max_resource))
            if value is not None}
    if band and strategy != "hyperband":
        raise UsageError("tune.sagemaker.hyperband_min_resource/max_resource apply to the"
                         " hyperband strategy only", hint="drop them, or set strategy ="
                                                          " 'hyperband'")
    if band:
        config["StrategyConfig"] = {"HyperbandStrategyConfig": band}


# --- reading trials back ------------------------------------------------------------------------


def _epoch(value: Any) -> float | None:
    return value.timestamp() if hasattr(value, "timestamp") else None


def trial_of(summary: Mapping[str, Any], number: int, *, static: Mapping[str, Any],
             output_path: str, stopping: bool) -> TrialResult:
    """One ``HyperParameterTrainingJobSummary`` as a :class:`TrialResult`.

    A trial stopped while the search used early stopping (or Hyperband) was pruned, not killed
    by hand; its model is ``<output path>/<trial job>/output/model.tar.gz``, where SageMaker puts
    every training job's model.
    """
    name = str(summary["TrainingJobName"])
    raw = str(summary.get("TrainingJobStatus") or "InProgress")
    status = TRIAL_STATUS.get(raw, "running")
    final = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    value = final.get("Value")
    objective = float(value) if value is not None and math.isfinite(float(value)) else None
    tuned = {str(k): decoded(str(v)) for k, v in (summary.get("TunedHyperParameters")
                                                   or {}).items()}
    pruned = status == "killed" and stopping
    return TrialResult(
        number=number, job_id=name, status=status, hyperparameters={**static, **tuned},
        objective=objective, pruned=pruned,
        model_uri=(f"{output_path.rstrip('/')}/{name}/output/model.tar.gz"
                   if status == "finished" else None),
        metrics={final["MetricName"]: objective} if objective is not None
        and final.get("MetricName") else {},
        failure_reason=(summary.get("FailureReason") or "the trial failed without a reason"
                        if status == "failed" else None),
        started_at=_epoch(summary.get("TrainingStartTime")),
        ended_at=_epoch(summary.get("TrainingEndTime")))


def number_trials(summaries: Sequence[Mapping[str, Any]]) -> list[tuple[int, Mapping[str, Any]]]:
    """``(number, summary)``: SageMaker names trials ``<tuning job>-NNN-<hex>`` (``NNN`` from
    001); a name without that tail is numbered after the others by creation time."""
    numbered, rest = [], []
    for summary in summaries:
        found = TRIAL_NAME.search(str(summary.get("TrainingJobName", "")))
        if found:
            numbered.append((int(found[1]) - 1, summary))
        else:
            rest.append(summary)
    start = max((n for n, _ in numbered), default=-1) + 1
    rest.sort(key=lambda s: (str(s.get("CreationTime", "")), str(s.get("TrainingJobName"))))
    numbered += [(start + i, summary) for i, summary in enumerate(rest)]
    return sorted(numbered, key=lambda item: item[0])


def best_of(trials: list[TrialResult], direction: str, named: str | None) -> int | None:
    """The best trial: the one SageMaker names when it is listed, else the best objective."""
    for trial in trials:
        if named and trial.job_id == named and trial.status == "finished":
            return trial.number
    scored = [t for t in trials if t.status == "finished" and t.objective is not None]
    if not scored:
        return None
    sign = 1.0 if direction == "maximize" else -1.0
    return max(scored, key=lambda t: (sign * float(t.objective or 0.0), -t.number)).number


def console_url(region: str, job_name: str) -> str:
    return (f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}"
            f"#/hyper-tuning-jobs/{job_name}")


class TuningRunner:
    """Runs one tuning job to its end; ``poll_s`` is the time between two looks at it."""

    def __init__(self, clients: AwsClients, options: SageMakerOptions, *, project: str,
                 poll_s: float = 30.0):
        self.clients = clients
        self.options = options
        self.project = project
        self.poll_s = poll_s

    def run(self, request: TuneRequest, *, output_path: str, progress: ProgressSink =
            null_progress, on_trial: TrialSink | None = None) -> TuneResult:
        options = effective_options(self.options, request.options)
        name = tuning_job_name(self.project, request.tune_id)
        body = tuning_request(request, options, job_name=name, output_path=output_path,
                              project=self.project)
        with translated(f"create tuning job {name}", resource=f"tuning job {name}"):
            self.clients.sagemaker.create_hyper_parameter_tuning_job(**body)
        config = body["HyperParameterTuningJobConfig"]
        progress(f"tuning job {name} created: {config['Strategy']}, "
                 + (f"{request.max_trials} trials, " if request.strategy != "grid"
                    else "every grid point, ")
                 + f"{request.parallel_trials} at once on {options.instance_type}")
        progress(f"console: {console_url(self.clients.region, name)}")
        follow = _Follower(self, request, name, output_path, progress, on_trial)
        try:
            description = follow.wait()
        except KeyboardInterrupt:
            self._stop(name, progress)
            raise
        return follow.result(description)

    def _stop(self, name: str, progress: ProgressSink) -> None:
        try:
            with translated(f"stop tuning job {name}", resource=f"tuning job {name}"):
                self.clients.sagemaker.stop_hyper_parameter_tuning_job(
                    HyperParameterTuningJobName=name)
            progress(f"stopping tuning job {name}: SageMaker stops its running trials")
        except MldockError as exc:
            region = self.clients.region
            progress(f"could not stop tuning job {name}: {exc}")
            progress(f"stop it with: aws sagemaker stop-hyper-parameter-tuning-job"
                     f" --hyper-parameter-tuning-job-name {name} --region {region}")


class _Follower:
    """The polling loop of one job: its status, its trials (each reported once when it ends)."""

    def __init__(self, runner: TuningRunner, request: TuneRequest, name: str, output_path: str,
                 progress: ProgressSink, on_trial: TrialSink | None):
        self.runner = runner
        self.request = request
        self.name = name
        self.output_path = output_path
        self.progress = progress
        self.on_trial = on_trial
        self.reported: set[str] = set()
        self.trials: list[TrialResult] = []
        self.stopping = request.early_stopping != "none" or request.strategy == "hyperband"

    def wait(self) -> dict[str, Any]:
        shown = None
        sagemaker = self.runner.clients.sagemaker
        while True:
            with translated(f"describe tuning job {self.name}",
                            resource=f"tuning job {self.name}"):
                description = sagemaker.describe_hyper_parameter_tuning_job(
                    HyperParameterTuningJobName=self.name)
            status = str(description["HyperParameterTuningJobStatus"])
            counts = description.get("TrainingJobStatusCounters") or {}
            line = f"{self.name}: {status}, trials " + ", ".join(
                f"{k} {v}" for k, v in sorted(counts.items()) if v)
            if line != shown:
                self.progress(line)
                shown = line
            user_stop = status in ("Stopping", "Stopped")
            self.poll(pruning=self.stopping and not user_stop)
            if status in TERMINAL:
                return dict(description)
            time.sleep(self.runner.poll_s)

    def poll(self, *, pruning: bool) -> None:
        """List the trials; pass each newly ended one to ``on_trial``."""
        summaries: list[dict[str, Any]] = []
        token = None
        sagemaker = self.runner.clients.sagemaker
        while True:
            args: dict[str, Any] = {"HyperParameterTuningJobName": self.name, "MaxResults": 100}
            if token:
                args["NextToken"] = token
            with translated(f"list the trials of tuning job {self.name}",
                            resource=f"tuning job {self.name}"):
                page = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(**args)
            summaries += page.get("TrainingJobSummaries") or []
            token = page.get("NextToken")
            if not token:
                break
        static = dict(self.request.hyperparameters)
        self.trials = [trial_of(summary, number, static=static, output_path=self.output_path,
                                stopping=pruning)
                       for number, summary in number_trials(summaries)]
        for trial in self.trials:
            if trial.status != "running" and trial.job_id not in self.reported:
                self.reported.add(trial.job_id)
                self.progress(f"trial {trial.number} ({trial.job_id}): {trial.status}"
                              + (" (pruned)" if trial.pruned else "")
                              + (f", {self.request.objective} = {trial.objective:g}"
                                 if trial.objective is not None else ""))
                if self.on_trial is not None:
                    self.on_trial(trial)

    def result(self, description: Mapping[str, Any]) -> TuneResult:
        status = TERMINAL[str(description["HyperParameterTuningJobStatus"])]
        named = (description.get("BestTrainingJob") or {}).get("TrainingJobName")
        best = best_of(self.trials, self.request.direction, named)
        reason = description.get("FailureReason") or None
        if status == "failed" and not reason:
            reason = "SageMaker reported the tuning job Failed without a reason"
        elif status == "killed":
            reason = reason or "the tuning job was stopped"
        trials = tuple(t if t.status != "running" else replace(t, status="killed")
                       for t in self.trials)
        self.progress(f"tuning job {self.name}: {description['HyperParameterTuningJobStatus']}"
                      + (f", best trial {best}" if best is not None else ", no finished trial"))
        return TuneResult(tune_id=self.request.tune_id, job_id=self.name, status=status,
                          trials=trials, best=best,
                          failure_reason=reason if status != "finished" else None)
