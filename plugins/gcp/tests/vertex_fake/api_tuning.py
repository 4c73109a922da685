"""Vertex AI ``hyperparameterTuningJobs``: create (and run the trials), get, list, cancel.

The body is parsed into ``aiplatform_v1.HyperparameterTuningJob`` and checked the way the service
checks it before accepting: display name, labels, trial counts, one metric with a goal, the
parameters (exactly one value spec each, ranges in order, log scales above zero, discrete values
ascending and distinct, grid search without continuous ranges) and the trial job spec's worker
pools, as for a custom job. :mod:`vertex_fake.trials` then runs the trials as custom jobs.
"""

from __future__ import annotations

import math
from typing import Any

from vertex_fake import api_jobs, listing, trials, validate, wire
from vertex_fake.errors import ApiError, invalid
from vertex_fake.routing import Request

COLLECTION = "hyperparameterTuningJobs"
BASE = "/v1/projects/{project}/locations/{location}/" + COLLECTION
OUTPUT_ONLY = ("name", "state", "create_time", "start_time", "end_time", "update_time", "error",
               "trials")
VALUE_SPECS = ("double_value_spec", "integer_value_spec", "categorical_value_spec",
               "discrete_value_spec")


def _types() -> Any:
    from google.cloud.aiplatform_v1 import types

    return types


def check_parameter(spec: Any, field: str, grid: bool) -> None:
    """One ``StudySpec.ParameterSpec``."""
    if not spec.parameter_id:
        raise invalid(f"{field}.parameter_id must be set.", f"{field}.parameter_id")
    given = [name for name in VALUE_SPECS if type(spec).pb(spec).HasField(name)]
    if len(given) != 1:
        raise invalid(f"{field}: exactly one of {', '.join(VALUE_SPECS)} must be set.", field)
    kind = given[0]
    log = spec.scale_type.name == "UNIT_LOG_SCALE"
    if kind in ("double_value_spec", "integer_value_spec"):
        value = getattr(spec, kind)
        if not value.min_value < value.max_value:
            raise invalid(f"{field}.{kind}: min_value must be below max_value.", field)
        if log and value.min_value <= 0:
            raise invalid(f"{field}: UNIT_LOG_SCALE needs min_value > 0.", field)
        if grid and kind == "double_value_spec":
            raise invalid(f"{field}: GRID_SEARCH cannot search a DOUBLE range; use discrete"
                          " values.", field)
    elif kind == "discrete_value_spec":
        values = list(spec.discrete_value_spec.values)
        if not values or any(not math.isfinite(v) for v in values) or \
                values != sorted(set(values)):
            raise invalid(f"{field}.discrete_value_spec.values must be distinct, finite and"
                          " ascending.", field)
        if log and values[0] <= 0:
            raise invalid(f"{field}: UNIT_LOG_SCALE needs values > 0.", field)
    else:
        values = list(spec.categorical_value_spec.values)
        if not values or len(set(values)) != len(values):
            raise invalid(f"{field}.categorical_value_spec.values must be distinct and not"
                          " empty.", field)
        if spec.scale_type.name != "SCALE_TYPE_UNSPECIFIED":
            raise invalid(f"{field}: a categorical parameter takes no scale_type.", field)


def check_job(job: Any) -> None:
    validate.display_name(job.display_name, "hyperparameter_tuning_job.display_name")
    validate.labels(job.labels, "hyperparameter_tuning_job.labels")
    validate.encryption(job.encryption_spec, "hyperparameter_tuning_job.encryption_spec")
    if job.max_trial_count < 1 or job.parallel_trial_count < 1:
        raise invalid("max_trial_count and parallel_trial_count must be at least 1.",
                      "hyperparameter_tuning_job.max_trial_count")
    study = job.study_spec
    if len(study.metrics) != 1:
        raise invalid("study_spec.metrics: exactly one metric (single-objective tuning).",
                      "hyperparameter_tuning_job.study_spec.metrics")
    metric = study.metrics[0]
    if not metric.metric_id or metric.goal.name == "GOAL_TYPE_UNSPECIFIED":
        raise invalid("study_spec.metrics[0]: metric_id and goal must be set.",
                      "hyperparameter_tuning_job.study_spec.metrics[0]")
    if not study.parameters:
        raise invalid("study_spec.parameters must be set.",
                      "hyperparameter_tuning_job.study_spec.parameters")
    ids = [p.parameter_id for p in study.parameters]
    if len(set(ids)) != len(ids):
        raise invalid("study_spec.parameters: parameter ids repeat.",
                      "hyperparameter_tuning_job.study_spec.parameters")
    grid = study.algorithm.name == "GRID_SEARCH"
    for index, spec in enumerate(study.parameters):
        check_parameter(spec, f"hyperparameter_tuning_job.study_spec.parameters[{index}]", grid)
    spec = job.trial_job_spec
    if not spec.worker_pool_specs:
        raise invalid("trial_job_spec.worker_pool_specs must be set.",
                      "hyperparameter_tuning_job.trial_job_spec.worker_pool_specs")
    for index, pool in enumerate(spec.worker_pool_specs):
        api_jobs.check_pool(pool, f"hyperparameter_tuning_job.trial_job_spec.worker_pool_specs"
                                  f"[{index}]", index == 0)
    validate.gcs_uri(spec.base_output_directory.output_uri_prefix,
                     "hyperparameter_tuning_job.trial_job_spec.base_output_directory")


def create(fake: Any, request: Request) -> Any:
    parent = fake.parent(request.params, "aiplatform.hyperparameterTuningJobs.create")
    job = request.message(_types().HyperparameterTuningJob)
    check_job(job)
    for name in OUTPUT_ONLY:
        job._pb.ClearField(name)
    job.name = f"{parent}/{COLLECTION}/{wire.new_id()}"
    job.state = _types().JobState.JOB_STATE_PENDING
    job.create_time = job.update_time = wire.now()
    fake.put(COLLECTION, job.name, job)
    trials.start(fake, job.name)
    return job


def get(fake: Any, request: Request) -> Any:
    parent = fake.parent(request.params, "aiplatform.hyperparameterTuningJobs.get")
    return fake.find(COLLECTION, f"{parent}/{COLLECTION}/{request.params['job']}")


def list_jobs(fake: Any, request: Request) -> dict[str, Any]:
    parent = fake.parent(request.params, "aiplatform.hyperparameterTuningJobs.list")
    return listing.page(fake, request, COLLECTION, parent, COLLECTION)


def cancel(fake: Any, request: Request) -> dict[str, Any]:
    parent = fake.parent(request.params, "aiplatform.hyperparameterTuningJobs.cancel")
    name = f"{parent}/{COLLECTION}/{request.params['job']}"
    with fake.lock:
        job = fake.find(COLLECTION, name)
        if job.state.name in api_jobs.TERMINAL:
            raise ApiError("FAILED_PRECONDITION", f"Cannot cancel {name}: it is already in"
                           f" state {job.state.name}.")
        job.state = _types().JobState.JOB_STATE_CANCELLING
        job.update_time = wire.now()
    trials.cancel(fake, name)
    return {}


ROUTES = [
    ("POST", BASE, create),
    ("GET", BASE, list_jobs),
    ("GET", BASE + "/{job}", get),
    ("POST", BASE + "/{job}:cancel", cancel),
]
