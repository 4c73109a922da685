"""The trials of a HyperparameterTuningJob, run the way Vertex AI runs them.

``parallel_trial_count`` trials at a time until ``max_trial_count`` (or, for GRID_SEARCH, until
the grid is exhausted). Each trial is a CustomJob of the trial job spec (Vertex links it in
``Trial.custom_job``), run by :mod:`vertex_fake.training`'s machinery with what Vertex adds: the
trial's values appended to every pool's ``args`` as ``--<id>=<value>``, ``CLOUD_ML_TRIAL_ID``,
and the base output directory ``<base>/<trial id>`` (so ``AIP_MODEL_DIR`` is per trial). When
the primary replica exits, the hypertune file (``CLOUD_ML_HP_METRIC_FILE``, default
``/tmp/hypertune/output.metrics``: JSON lines) is read from its container and the last value of
the study's metric becomes the trial's final measurement. A trial that fails, or reports no value,
is INFEASIBLE. The job SUCCEEDS when a trial did, FAILS otherwise, is CANCELLED after
``:cancel``.

Values are sampled uniformly at random (log-uniformly on UNIT_LOG_SCALE) for every algorithm but
GRID_SEARCH: the fake has no Vizier, and no early stopping (``*_stopping_spec`` is accepted and
not applied).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import random
import tarfile
import threading
from collections.abc import Iterator
from typing import Any

from vertex_fake import containers as engine
from vertex_fake import training, wire

HYPERTUNE_FILE = "/tmp/hypertune/output.metrics"
COLLECTION = "hyperparameterTuningJobs"


def _types() -> Any:
    from google.cloud.aiplatform_v1 import types

    return types


def start(fake: Any, name: str) -> None:
    cancel_event = threading.Event()
    fake.extra.setdefault("tuning_cancels", {})[name] = cancel_event
    threading.Thread(target=_run, args=(fake, name, cancel_event), daemon=True,
                     name=f"tuning-{name.rsplit('/', 1)[-1]}").start()


def cancel(fake: Any, name: str) -> None:
    found = fake.extra.get("tuning_cancels", {}).get(name)
    if found is not None:
        found.set()


# --- values -------------------------------------------------------------------------------------


def _choices(spec: Any) -> list[Any]:
    if type(spec).pb(spec).HasField("integer_value_spec"):
        low, high = spec.integer_value_spec.min_value, spec.integer_value_spec.max_value
        return list(range(int(low), int(high) + 1))
    if spec.discrete_value_spec.values:
        return list(spec.discrete_value_spec.values)
    return list(spec.categorical_value_spec.values)


def _sample(spec: Any, rng: random.Random) -> Any:
    if type(spec).pb(spec).HasField("double_value_spec"):
        double = spec.double_value_spec
        if spec.scale_type.name == "UNIT_LOG_SCALE":
            return math.exp(rng.uniform(math.log(double.min_value), math.log(double.max_value)))
        return rng.uniform(double.min_value, double.max_value)
    return rng.choice(_choices(spec))


def parameter_sets(study: Any, count: int) -> Iterator[dict[str, Any]]:
    """The values of each trial: the grid in order for GRID_SEARCH, else random draws."""
    specs = list(study.parameters)
    if study.algorithm.name == "GRID_SEARCH":
        grid = itertools.product(*(_choices(spec) for spec in specs))
        for combo in itertools.islice(grid, count):
            yield {spec.parameter_id: value for spec, value in zip(specs, combo, strict=True)}
        return
    rng = random.Random()  # noqa: S311 - sampling values, not secrets
    for _ in range(count):
        yield {spec.parameter_id: _sample(spec, rng) for spec in specs}


def _arg(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _proto_value(value: Any) -> Any:
    from google.protobuf import struct_pb2

    if isinstance(value, str):
        return struct_pb2.Value(string_value=value)
    return struct_pb2.Value(number_value=float(value))


# --- one trial ----------------------------------------------------------------------------------


def _trial_job(fake: Any, job: Any, trial_id: str, values: dict[str, Any]) -> str:
    """Create the trial's CustomJob (stored with the others, as Vertex AI links it)."""
    types = _types()
    spec = types.CustomJobSpec(type(job.trial_job_spec).to_dict(job.trial_job_spec))
    extra = [f"--{key}={_arg(value)}" for key, value in values.items()]
    for pool in spec.worker_pool_specs:
        if pool.container_spec.image_uri:
            pool.container_spec.args = [*pool.container_spec.args, *extra]
            pool.container_spec.env = [*pool.container_spec.env,
                                       types.EnvVar(name="CLOUD_ML_TRIAL_ID", value=trial_id)]
    base = spec.base_output_directory.output_uri_prefix.rstrip("/")
    spec.base_output_directory.output_uri_prefix = f"{base}/{trial_id}"
    parent = job.name.rsplit(f"/{COLLECTION}/", 1)[0]
    custom = types.CustomJob(display_name=f"{job.display_name[:100]}-trial-{trial_id}",
                             job_spec=spec, labels=dict(job.labels))
    custom.name = f"{parent}/customJobs/{wire.new_id()}"
    custom.state = types.JobState.JOB_STATE_PENDING
    custom.create_time = custom.update_time = wire.now()
    fake.put("customJobs", custom.name, custom)
    return str(custom.name)


def read_hypertune(container: Any, env: dict[str, str], metric: str) -> tuple[float, int] | None:
    """``(value, step)`` of the last report of ``metric`` in the container's hypertune file."""
    path = env.get("CLOUD_ML_HP_METRIC_FILE") or HYPERTUNE_FILE
    try:
        stream, _ = container.get_archive(path)
    except Exception:  # noqa: BLE001 - no such file: the trial reported nothing
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        member = archive.extractfile(archive.getmembers()[0])
        text = member.read().decode("utf-8", "replace") if member else ""
    found = None
    for line in text.splitlines():
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            record = json.loads(line)
            if metric in record:
                found = (float(record[metric]), int(float(record.get("global_step") or 0)))
    return found


def _run_trial(fake: Any, custom_name: str, metric: str,
               cancelled: threading.Event) -> tuple[str, str, tuple[float, int] | None]:
    """Run one trial's custom job; ``(job state, error message, (value, step) or None)``."""
    with fake.lock:
        custom = fake.custom_job(custom_name)
        replicas = training._replicas(custom)
    docker = engine.containers(fake)
    try:
        for image in {r.spec.container_spec.image_uri for r in replicas}:
            docker.ensure_image(image)
        training._launch(fake, docker, custom, replicas)
    except Exception as exc:  # noqa: BLE001 - the trial fails as Vertex's would
        training._finish(fake, docker, custom_name, replicas, "FAILED",
                         {"code": 3, "message": str(exc)})
        return "FAILED", str(exc), None
    training._set_state(fake, custom_name, "RUNNING")
    state, error = training._watch(custom, replicas, cancelled)
    reported = None
    if state == "SUCCEEDED":
        env = training._env(fake, custom, replicas[0], replicas)
        reported = read_hypertune(replicas[0].container, env, metric)
    training._finish(fake, docker, custom_name, replicas, state, error)
    return state, (error or {}).get("message", ""), reported


def _trial(fake: Any, name: str, trial_id: str, values: dict[str, Any],
           cancelled: threading.Event) -> None:
    types = _types()
    with fake.lock:
        job = fake.find(COLLECTION, name)
        metric = job.study_spec.metrics[0].metric_id
        custom_name = _trial_job(fake, job, trial_id, values)
        trial = types.Trial(
            name=f"{name}/trials/{trial_id}", id=trial_id, state=types.Trial.State.ACTIVE,
            parameters=[types.Trial.Parameter(parameter_id=k, value=_proto_value(v))
                        for k, v in values.items()],
            start_time=wire.now(), custom_job=custom_name)
        _store_trial(job, trial)
    state, message, reported = _run_trial(fake, custom_name, metric, cancelled)
    if reported is not None:
        trial.final_measurement = types.Measurement(
            step_count=reported[1], metrics=[types.Measurement.Metric(metric_id=metric,
                                                                      value=reported[0])])
        trial.state = types.Trial.State.SUCCEEDED
    else:
        trial.state = types.Trial.State.INFEASIBLE
        trial.infeasible_reason = (message or f"The trial reported no value for {metric!r}"
                                   f" in its hypertune file.") if state != "CANCELLED" else \
            "The trial was cancelled."
    trial.end_time = wire.now()
    with fake.lock:
        _store_trial(fake.find(COLLECTION, name), trial)


def _store_trial(job: Any, trial: Any) -> None:
    """Put ``trial`` into ``job.trials`` (replacing the one with its id)."""
    kept = [t for t in job.trials if t.id != trial.id]
    job.trials = sorted([*kept, trial], key=lambda t: int(t.id))
    job.update_time = wire.now()


# --- the job ------------------------------------------------------------------------------------


def _set_state(fake: Any, name: str, state: str, error: dict[str, Any] | None = None) -> None:
    types = _types()
    with fake.lock:
        job = fake.find(COLLECTION, name)
        job.state = getattr(types.JobState, f"JOB_STATE_{state}")
        job.update_time = wire.now()
        if state == "RUNNING":
            job.start_time = wire.now()
        if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
            job.end_time = wire.now()
        if error is not None:
            job.error = error


def _run(fake: Any, name: str, cancelled: threading.Event) -> None:
    with fake.lock:
        job = fake.find(COLLECTION, name)
        sets = list(parameter_sets(job.study_spec, job.max_trial_count))
        parallel = job.parallel_trial_count
    _set_state(fake, name, "RUNNING")
    for first in range(0, len(sets), parallel):
        if cancelled.is_set():
            break
        threads = [threading.Thread(target=_trial, args=(fake, name, str(first + k + 1), values,
                                                         cancelled), daemon=True)
                   for k, values in enumerate(sets[first:first + parallel])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    with fake.lock:
        states = [t.state.name for t in fake.find(COLLECTION, name).trials]
    if cancelled.is_set():
        _set_state(fake, name, "CANCELLED", {"code": 1, "message": "CANCELED"})
    elif "SUCCEEDED" in states:
        _set_state(fake, name, "SUCCEEDED")
    else:
        _set_state(fake, name, "FAILED", {"code": 9, "message": "All trials failed or reported"
                                                                " no objective."})
    fake.extra.get("tuning_cancels", {}).pop(name, None)
