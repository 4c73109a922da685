"""A CustomJob run the way Vertex AI runs it: one container per replica of every worker pool.

Each replica gets the image with the pool's ``command``/``args``, the pool's env, and what
Vertex AI sets: ``CLUSTER_SPEC`` and ``TF_CONFIG`` (every replica's ``127.0.0.1:<port>``: the
containers share the host network, so each has its own port), ``CLOUD_ML_JOB_ID``,
``AIP_MODEL_DIR`` / ``AIP_CHECKPOINT_DIR`` / ``AIP_TENSORBOARD_LOG_DIR`` under
``baseOutputDirectory`` and ``STORAGE_EMULATOR_HOST``. States: PENDING → RUNNING → SUCCEEDED when
every replica exits 0, FAILED at the first non-zero exit (the others are stopped, the message
names the replica and quotes its last stderr line), CANCELLED after ``:cancel``, FAILED past
``scheduling.timeout``. Containers are removed once the job ends; their output stays in the log
store.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from mldock.testing.processes import free_port

from vertex_fake import containers as engine
from vertex_fake import logs, wire

TF_TYPES = ("chief", "worker", "ps", "evaluator")
POLL_S = 0.2


@dataclass
class Replica:
    pool: int
    index: int
    spec: Any  # aiplatform_v1.WorkerPoolSpec
    port: int
    container: Any = None
    last_stderr: str = ""
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def task(self) -> str:
        return f"workerpool{self.pool}-{self.index}"


def start(fake: Any, name: str) -> None:
    """Run the job ``name`` in the background (its state changes as the containers run)."""
    cancel = threading.Event()
    fake.extra.setdefault("job_cancels", {})[name] = cancel
    threading.Thread(target=_run, args=(fake, name, cancel), daemon=True,
                     name=f"job-{name.rsplit('/', 1)[-1]}").start()


def cancel(fake: Any, name: str) -> None:
    found = fake.extra.get("job_cancels", {}).get(name)
    if found is not None:
        found.set()


def _set_state(fake: Any, name: str, state: str, error: dict[str, Any] | None = None) -> None:
    from google.cloud.aiplatform_v1 import types

    with fake.lock:
        job = fake.custom_job(name)
        job.state = getattr(types.JobState, f"JOB_STATE_{state}")
        job.update_time = wire.now()
        if state == "RUNNING":
            job.start_time = wire.now()
        if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
            job.end_time = wire.now()
        if error is not None:
            job.error = error


def _replicas(job: Any) -> list[Replica]:
    found = []
    for pool, spec in enumerate(job.job_spec.worker_pool_specs):
        for index in range(spec.replica_count if spec.container_spec.image_uri else 0):
            found.append(Replica(pool, index, spec, free_port()))
    return found


def _env(fake: Any, job: Any, replica: Replica, replicas: list[Replica]) -> dict[str, str]:
    cluster: dict[str, list[str]] = {}
    for other in replicas:
        cluster.setdefault(f"workerpool{other.pool}", []).append(f"127.0.0.1:{other.port}")
    job_id = job.name.rsplit("/", 1)[-1]
    spec_json = type(job.job_spec).to_json(job.job_spec, preserving_proto_field_name=True,
                                           indent=None)
    env = {
        "CLOUD_ML_JOB_ID": job_id,
        "CLUSTER_SPEC": json.dumps({"cluster": cluster, "environment": "cloud", "task": {
            "type": f"workerpool{replica.pool}", "index": replica.index, "trial": ""},
            "job": spec_json}),
        "TF_CONFIG": json.dumps({
            "cluster": {TF_TYPES[int(k[-1])]: v for k, v in cluster.items()},
            "environment": "cloud",
            "task": {"type": TF_TYPES[replica.pool], "index": replica.index}}),
    }
    base = job.job_spec.base_output_directory.output_uri_prefix.rstrip("/")
    if base:
        env.update({"AIP_MODEL_DIR": f"{base}/model/", "AIP_CHECKPOINT_DIR":
                    f"{base}/checkpoints/", "AIP_TENSORBOARD_LOG_DIR": f"{base}/logs/"})
    if fake.storage_emulator:
        env["STORAGE_EMULATOR_HOST"] = fake.storage_emulator
    env.update({var.name: var.value for var in replica.spec.container_spec.env})
    return env


def _run(fake: Any, name: str, cancelled: threading.Event) -> None:
    with fake.lock:
        job = fake.custom_job(name)
        replicas = _replicas(job)
    docker = engine.containers(fake)
    try:
        for image in {r.spec.container_spec.image_uri for r in replicas}:
            docker.ensure_image(image)
        _launch(fake, docker, job, replicas)
    except Exception as exc:  # noqa: BLE001 - the job fails as Vertex's would, with the reason
        _finish(fake, docker, name, replicas, "FAILED", {"code": 3, "message": str(exc)})
        return
    _set_state(fake, name, "RUNNING")
    state, error = _watch(job, replicas, cancelled)
    _finish(fake, docker, name, replicas, state, error)


def _launch(fake: Any, docker: Any, job: Any, replicas: list[Replica]) -> None:
    job_id = job.name.rsplit("/", 1)[-1]
    store = logs.log_store(fake)
    for replica in replicas:
        spec = replica.spec.container_spec

        def sink(stream: str, stamp: str, line: str, replica: Replica = replica) -> None:
            if stream == "stderr" and line.strip():
                replica.last_stderr = line.strip()
            store.job_line(job_id, replica.task, stream, stamp, line)

        replica.container = docker.run(
            spec.image_uri, name=f"vertexfake-{job_id}-{replica.task}-{fake.session_id}",
            env=_env(fake, job, replica, replicas), command=list(spec.command),
            args=list(spec.args), labels={"mldock.test.vertex-job": job_id})
        replica.threads = docker.follow(replica.container, sink)


def _watch(job: Any, replicas: list[Replica],
           cancelled: threading.Event) -> tuple[str, dict[str, Any] | None]:
    timeout = job.job_spec.scheduling.timeout
    limit = timeout.total_seconds() if timeout else 7 * 24 * 3600
    started = time.monotonic()
    while True:
        if cancelled.wait(POLL_S):
            return "CANCELLED", {"code": 1, "message": "CANCELED"}
        if time.monotonic() - started > limit:
            return "FAILED", {"code": 4, "message": "Job exceeded its timeout"}
        done = 0
        for replica in replicas:
            replica.container.reload()
            if replica.container.status not in ("exited", "dead"):
                continue
            code = replica.container.attrs["State"]["ExitCode"]
            if code != 0:
                for thread in replica.threads:
                    thread.join(timeout=5)
                return "FAILED", {"code": 3, "message": _failure(job, replica, code)}
            done += 1
        if done == len(replicas):
            return "SUCCEEDED", None


def _failure(job: Any, replica: Replica, code: int) -> str:
    job_id = job.name.rsplit("/", 1)[-1]
    last = (f" Last error log: {replica.last_stderr.rstrip('.')}." if replica.last_stderr
            else "")
    return (f"The replica {replica.task} exited with a non-zero status of {code}. Termination"
            f" reason: Error.{last} To find out more about why your job exited please check"
            " the logs: https://console.cloud.google.com/logs/viewer?resource=ml_job%2Fjob_id%2F"
            f"{job_id}")


def _finish(fake: Any, docker: Any, name: str, replicas: list[Replica], state: str,
            error: dict[str, Any] | None) -> None:
    for replica in replicas:
        if replica.container is not None:
            with contextlib.suppress(Exception):  # already gone: nothing to stop
                replica.container.stop(timeout=2)
            for thread in replica.threads:
                thread.join(timeout=10)
            docker.remove(replica.container)
    _set_state(fake, name, state, error)
    fake.extra.get("job_cancels", {}).pop(name, None)
