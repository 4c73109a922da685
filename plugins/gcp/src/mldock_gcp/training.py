"""Vertex AI custom jobs: the CustomJob, and following the job to its end.

The job is built by a pure function (:func:`custom_job`) so what is sent can be read and checked
without Google. :class:`TrainingRunner` creates the job, then polls it: state transitions and the
Cloud Logging log go to ``progress``, ``mldock-metric`` lines to ``on_metrics`` as they arrive.

What the container gets (read by :mod:`mldock.runtime`, see ``docs/container.md``):

* ``args``: ``train``, then ``--<key>=<value>`` per hyperparameter (strings as they are, the rest
  as JSON, decoded back by the runtime), then ``--input-<channel>=gs://bucket/prefix`` per data
  channel. Vertex mounts every bucket the job may read under ``/gcs/<bucket>/`` (Cloud Storage
  FUSE), and the runtime maps such a URI to that path, so ``ctx.input_dir("train")`` is
  ``/gcs/<bucket>/<prefix>``; where no mount exists (a local run of the image) the runtime
  downloads the prefix with its stdlib ``gs://`` client instead. Either way the code sees a folder.
* ``baseOutputDirectory`` ``<staging>/jobs/<job display name>``, from which Vertex sets
  ``AIP_MODEL_DIR`` (``<base>/model/``), ``AIP_CHECKPOINT_DIR`` and ``AIP_TENSORBOARD_LOG_DIR``;
  the runtime writes the model (with its manifest) there, and that folder is the result's
  ``model_uri``.
* ``MLDOCK_RUN_ID`` and the job's environment; with ``replica_count > 1`` Vertex adds
  ``CLUSTER_SPEC``, from which the runtime reads hosts and ranks.

Ctrl-C (core raises KeyboardInterrupt inside ``train``), as for the aws plugin: on a terminal the
user is asked whether to cancel the job (Vertex sends SIGTERM, the runtime's stop hooks run);
otherwise the job keeps running and the way to follow or cancel it is printed. The interrupt is
then re-raised and core records the run as killed.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from mldock.errors import MldockError, UsageError
from mldock.interfaces import (
    MetricsSink,
    ProgressSink,
    TrainingJob,
    TrainingResult,
    null_progress,
)
from mldock.runtime.names import ENV_RUN_ID

from mldock_gcp.clients import VertexClients
from mldock_gcp.config import VertexOptions
from mldock_gcp.errors import translated
from mldock_gcp.logs import LogFollower
from mldock_gcp.names import labels

TERMINAL = {"JOB_STATE_SUCCEEDED": "finished", "JOB_STATE_FAILED": "failed",
            "JOB_STATE_CANCELLED": "killed", "JOB_STATE_EXPIRED": "failed",
            "JOB_STATE_PARTIALLY_SUCCEEDED": "failed"}
OVERRIDABLE = ("machine_type", "accelerator_type", "accelerator_count", "replica_count",
               "boot_disk_size_gb", "timeout_s", "spot", "restart_on_worker_restart")
"""Keys of ``TrainingJob.options`` that override ``[deploy.vertex]`` for one job."""
LAST_LINES_PAUSE_S = 3.0
LAST_LOOKS = 5
MAX_ARGUMENTS_BYTES = 100_000
"""Vertex refuses a job whose container arguments are too large; data belongs in a channel."""


def effective_options(options: VertexOptions, overrides: Mapping[str, Any]) -> VertexOptions:
    """``options`` with the job's own overrides (machine, replicas, spot…) applied, validated."""
    picked = {key: overrides[key] for key in OVERRIDABLE if overrides.get(key) is not None}
    if not picked:
        return options
    return VertexOptions.model_validate({**options.model_dump(), **picked})


def container_args(job: TrainingJob) -> list[str]:
    """``train``, the hyperparameters as ``--k=v`` and the channels as ``--input-<ch>=gs://…``."""
    args = ["train"]
    for key, value in job.hyperparameters.items():
        text = value if isinstance(value, str) else json.dumps(value)
        args.append(f"--{key}={text}")
    for name, uri in sorted(job.inputs.items()):
        if not str(uri).startswith("gs://"):
            raise UsageError(f"data channel {name!r} is {uri}: Vertex AI reads channels from"
                             " Cloud Storage",
                             hint='set [storage] uri = "gs://<bucket>/<prefix>" for the gcp'
                                  " environment, so local data is staged there, or give a gs://"
                                  " URI in [data]")
        args.append(f"--input-{name}={str(uri).rstrip('/')}")
    if sum(len(arg) for arg in args) > MAX_ARGUMENTS_BYTES:
        raise UsageError("the hyperparameters are too large to pass to a Vertex AI job",
                         hint="put large values in a data channel instead")
    return args


def worker_pools(job: TrainingJob, options: VertexOptions) -> list[dict[str, Any]]:
    """Pool 0 holds the primary (one replica); pool 1 the other ``replica_count - 1``."""
    machine: dict[str, Any] = {"machine_type": options.machine_type}
    if options.accelerator_type:
        machine["accelerator_type"] = options.accelerator_type
        machine["accelerator_count"] = options.accelerator_count
    env = {ENV_RUN_ID: job.run_id, **dict(job.environment)}
    pool = {"machine_spec": machine,
            "disk_spec": {"boot_disk_type": "pd-ssd",
                          "boot_disk_size_gb": options.boot_disk_size_gb},
            "container_spec": {"image_uri": job.image, "args": container_args(job),
                               "env": [{"name": k, "value": str(v)}
                                       for k, v in sorted(env.items())]}}
    pools = [{**pool, "replica_count": 1}]
    if options.replica_count > 1:
        pools.append({**pool, "replica_count": options.replica_count - 1})
    return pools


def custom_job(job: TrainingJob, options: VertexOptions, *, display_name: str,
               base_output_dir: str, project: str) -> dict[str, Any]:
    """The CustomJob for ``job`` as a dict of the API's fields (snake_case, as proto-plus takes
    it; see the module docstring)."""
    scheduling: dict[str, Any] = {"timeout": {"seconds": options.timeout_s},
                                  "restart_job_on_worker_restart":
                                      options.restart_on_worker_restart}
    if options.spot:
        scheduling["strategy"] = "SPOT"
    spec: dict[str, Any] = {
        "worker_pool_specs": worker_pools(job, options),
        "scheduling": scheduling,
        "base_output_directory": {"output_uri_prefix": base_output_dir},
    }
    if options.service_account:
        spec["service_account"] = options.service_account
    if options.network:
        spec["network"] = options.network
    found: dict[str, Any] = {
        "display_name": display_name, "job_spec": spec,
        "labels": labels(options.labels, project=project, role="training", run_id=job.run_id)}
    if options.encryption_key:
        found["encryption_spec"] = {"kms_key_name": options.encryption_key}
    return found


def state_name(state: Any) -> str:
    """``JOB_STATE_RUNNING`` from the enum (or its number, or its name)."""
    name = getattr(state, "name", None)
    if name:
        return str(name)
    from google.cloud.aiplatform_v1 import JobState

    return JobState(int(state)).name


def short_state(state: str) -> str:
    """``JOB_STATE_RUNNING`` → ``running``, for progress lines."""
    return state.removeprefix("JOB_STATE_").lower().replace("_", " ")


def result_of(found: Any, run_id: str, model_uri: str) -> TrainingResult:
    """How an ended job went, from its CustomJob."""
    state = state_name(found.state)
    status = TERMINAL[state]
    message = (found.error.message or None) if found.error else None
    reason = None
    if status == "failed":
        reason = message or f"Vertex AI reported the job {short_state(state)} without a reason"
        if state == "JOB_STATE_EXPIRED":
            reason = ("the job ran out of time (JOB_STATE_EXPIRED); raise [deploy.vertex]"
                      " timeout_s" + (f": {message}" if message else ""))
    elif status == "killed":
        reason = message or "the custom job was cancelled"
    return TrainingResult(run_id=run_id, status=status, job_id=str(found.name),
                          model_uri=model_uri if status == "finished" else None,
                          failure_reason=reason)


def console_url(project: str, region: str, job_id: str) -> str:
    return (f"https://console.cloud.google.com/vertex-ai/locations/{region}/training/{job_id}"
            f"/cpu?project={project}")


def _ask_terminal(question: str) -> bool:
    sys.stderr.write(question)
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


class TrainingRunner:
    """Runs one job to its end. ``interactive`` and ``ask`` decide what Ctrl-C does (replaced in
    tests); ``poll_s`` is the time between two looks at the job and its log."""

    def __init__(self, clients: VertexClients, options: VertexOptions, *, project: str,
                 poll_s: float = 10.0, interactive: Callable[[], bool] = sys.stdin.isatty,
                 ask: Callable[[str], bool] = _ask_terminal):
        self.clients = clients
        self.options = options
        self.project = project
        self.poll_s = poll_s
        self.interactive = interactive
        self.ask = ask

    def run(self, job: TrainingJob, *, display_name: str, base_output_dir: str,
            progress: ProgressSink = null_progress,
            on_metrics: MetricsSink | None = None) -> TrainingResult:
        options = effective_options(self.options, job.options)
        body = custom_job(job, options, display_name=display_name,
                          base_output_dir=base_output_dir, project=self.project)
        from google.cloud.aiplatform_v1 import CustomJob

        with translated(f"create custom job {display_name}",
                        resource=f"location {self.clients.parent}"):
            created = self.clients.jobs.create_custom_job(parent=self.clients.parent,
                                                          custom_job=CustomJob(body))
        name = str(created.name)
        job_id = name.rsplit("/", 1)[-1]
        count = options.replica_count
        progress(f"custom job {display_name} created ({name}): {count} x {options.machine_type}"
                 + (f" + {options.accelerator_count} x {options.accelerator_type}"
                    if options.accelerator_type else "")
                 + (" (spot)" if options.spot else ""))
        progress(f"console: {console_url(self.clients.project, self.clients.region, job_id)}")
        follower = LogFollower(self.clients, job_id, progress, on_metrics, replicas=count)
        try:
            found = self._wait(name, follower, progress)
        except KeyboardInterrupt:
            self._interrupted(name, progress)
            raise
        result = result_of(found, job.run_id, f"{base_output_dir.rstrip('/')}/model")
        progress(f"custom job {display_name}: {result.status}"
                 + (f" ({result.failure_reason})" if result.failure_reason else ""))
        return result

    def _wait(self, name: str, follower: LogFollower, progress: ProgressSink) -> Any:
        shown: str | None = None
        while True:
            with translated(f"look up custom job {name}", resource=f"custom job {name}"):
                found = self.clients.jobs.get_custom_job(name=name)
            state = state_name(found.state)
            if state != shown:
                progress(f"custom job {name.rsplit('/', 1)[-1]}: {short_state(state)}")
                shown = state
            follower.poll()
            if state in TERMINAL:
                self._last_lines(follower)
                return found
            time.sleep(self.poll_s)

    def _last_lines(self, follower: LogFollower) -> None:
        """Cloud Logging indexes the last lines a moment after the job ends: look once more
        after a short pause, then until a look finds nothing new (a few looks at most)."""
        time.sleep(min(self.poll_s, LAST_LINES_PAUSE_S))
        for _ in range(LAST_LOOKS):
            if not follower.poll():
                return

    def _interrupted(self, name: str, progress: ProgressSink) -> None:
        """Ask (on a terminal) whether to cancel the job; otherwise say how to follow it."""
        cancel = False
        if self.interactive():
            try:
                cancel = self.ask(f"cancel custom job {name} on Vertex AI? [y/N] ")
            except (KeyboardInterrupt, EOFError):
                cancel = False
        job_id = name.rsplit("/", 1)[-1]
        region = self.clients.region
        if cancel:
            try:
                with translated(f"cancel custom job {name}", resource=f"custom job {name}"):
                    self.clients.jobs.cancel_custom_job(name=name)
                progress(f"cancelling custom job {job_id}: Vertex AI sends SIGTERM, the stop"
                         " hooks run")
                return
            except MldockError as exc:
                progress(f"could not cancel custom job {job_id}: {exc}")
        progress(f"custom job {job_id} keeps running on Vertex AI; follow it with:")
        progress(f"  gcloud ai custom-jobs stream-logs {job_id} --region={region}")
        progress(f"  {console_url(self.clients.project, region, job_id)}")
        progress(f"cancel it with: gcloud ai custom-jobs cancel {job_id} --region={region}")
