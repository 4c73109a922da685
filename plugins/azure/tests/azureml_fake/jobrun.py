"""A command job's life: NotStarted → Queued → Running → Completed / Failed / Canceled.

What Azure ML does with a command job and a custom-image environment, done on the local engine:

* one container per process: ``resources.instanceCount`` nodes × the distribution's processes
  per node; the image's entrypoint is replaced by ``/bin/sh -c <command>`` (Azure ML runs the
  job's command, not the image's entrypoint);
* ``AZUREML_*`` variables on every process, and for a PyTorch distribution ``MASTER_ADDR``,
  ``MASTER_PORT``, ``WORLD_SIZE``, ``NODE_RANK``, ``RANK``, ``LOCAL_RANK`` (MPI:
  ``OMPI_COMM_WORLD_*``);
* ``${{inputs.x}}`` / ``${{outputs.x}}`` in the command become mounted folders: inputs are
  downloaded from Azurite first (``download`` mode), outputs are one folder shared by all nodes,
  uploaded to their datastore path when the job ends (``upload`` mode); literal inputs become
  their value;
* stdout and stderr stream into ``user_logs/std_log.txt`` (``std_log_process_<rank>.txt`` when
  several processes run), which run history lists for ``ml_client.jobs.stream``;
* a non-zero exit fails the job with the last lines of that process's stderr as the error.
"""

from __future__ import annotations

import re
import socket
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import containers, references
from .routing import PROVIDER, ArmError
from .state import now, system_data

INPUTS_ROOT = "/mnt/azureml/inputs"
OUTPUTS_ROOT = "/mnt/azureml/outputs"
LOGS = "user_logs"
ERROR_LINES = 10
BINDING = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")
FOLDER_TYPES = {"uri_folder", "custom_model", "mlflow_model", "triton_model", "mltable"}


@dataclass
class JobRun:
    """What the fake keeps about a running job besides its ARM document."""

    job_id: str
    image: str
    folder: Path
    canceled: threading.Event = field(default_factory=threading.Event)
    containers: list[Any] = field(default_factory=list)
    log_files: dict[str, Path] = field(default_factory=dict)
    error: dict[str, Any] | None = None


def new_job(fake: Any, workspace: str, name: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The ARM document of a job as the service first returns it."""
    outputs = {}
    for output, given in (properties.get("outputs") or {}).items():
        spec = dict(given)
        spec.setdefault("uri", f"azureml://datastores/workspaceblobstore/paths/azureml/{name}/"
                               f"{output}/")
        spec.setdefault("mode", "ReadWriteMount")
        outputs[output] = spec
    studio = f"https://studio.fake.local/runs/{name}"
    return {
        "id": f"{workspace}/jobs/{name}", "name": name, "type": f"{PROVIDER}/workspaces/jobs",
        "systemData": system_data(),
        "properties": {
            **properties, "outputs": outputs, "status": "NotStarted",
            "experimentName": properties.get("experimentName") or "Default",
            "displayName": properties.get("displayName") or name,
            "services": {"Studio": {"jobServiceType": "Studio", "endpoint": studio},
                         "Tracking": {"jobServiceType": "Tracking",
                                      "endpoint": f"azureml://{fake.location}.fake/mlflow"}},
        },
    }


def start(fake: Any, job_id: str, image: str) -> None:
    name = job_id.rsplit("/", 1)[-1]
    run = JobRun(job_id, image, fake.containers.scratch("jobs", name))
    fake.job_runs[job_id.lower()] = run
    threading.Thread(target=_life, args=(fake, run), name=f"job-{name}", daemon=True).start()


def cancel(fake: Any, job_id: str) -> None:
    run = fake.job_runs.get(job_id.lower())
    if run is None:
        return
    run.canceled.set()
    for container in list(run.containers):
        fake.containers.remove(container)


def _set(fake: Any, run: JobRun, status: str) -> None:
    fake.store.update(run.job_id, status=status)


def _life(fake: Any, run: JobRun) -> None:
    try:
        _set(fake, run, "Queued")
        job = fake.store.get(run.job_id)
        properties = job["properties"]
        binds, values = _prepare_data(fake, run, properties)
        if run.canceled.is_set():
            return _set(fake, run, "Canceled")
        _set(fake, run, "Running")
        fake.store.update(run.job_id, startTimeUtc=now())
        codes = _run_processes(fake, run, properties, binds, values)
        if run.canceled.is_set():
            return _set(fake, run, "Canceled")
        failed = [(rank, code, tail) for rank, (code, tail) in enumerate(codes) if code != 0]
        if failed:
            rank, code, tail = failed[0]
            run.error = {"code": "UserError", "message": f"Process {rank} exited with code"
                         f" {code}: {tail}".strip()}
            return _set(fake, run, "Failed")
        _set(fake, run, "Finalizing")
        _upload_outputs(fake, run, properties)
        _set(fake, run, "Completed")
    except _UserDataError as exc:  # the job's own data is wrong: it fails, as on the service
        run.error = {"code": "UserError", "message": str(exc)}
        _set(fake, run, "Failed")
    except Exception as exc:  # noqa: BLE001 - a bug of the fake: the job fails and the test too
        run.error = {"code": "SystemError", "message": f"{type(exc).__name__}: {exc}"}
        fake.server.crashes.append(f"job {run.job_id}: {traceback.format_exc()}")
        _set(fake, run, "Failed")
    finally:
        fake.store.update(run.job_id, endTimeUtc=now())
        for container in list(run.containers):
            fake.containers.remove(container)


class _UserDataError(Exception):
    """The job's data cannot be found: the job fails; not a bug of the fake."""


def _datastores(fake: Any, run: JobRun) -> dict[str, str]:
    workspace = run.job_id.rsplit("/jobs/", 1)[0]
    return {d["name"]: d["properties"]["containerName"]
            for d in fake.store.children(workspace, "datastores")}


def _prepare_data(fake: Any, run: JobRun, properties: dict[str, Any]
                  ) -> tuple[dict[Path, str], dict[str, str]]:
    """Download the inputs, make the output folders; returns binds and ``${{...}}`` values."""
    binds: dict[Path, str] = {}
    values: dict[str, str] = {}
    stores = _datastores(fake, run)
    for name, spec in (properties.get("inputs") or {}).items():
        kind = spec.get("jobInputType", "").lower()
        if kind == "literal":
            values[f"inputs.{name}"] = str(spec.get("value", ""))
            continue
        try:
            uri = references.resolve(fake, run.job_id.rsplit("/jobs/", 1)[0], spec["uri"])
            container, prefix = fake.blob.locate(uri, stores)
        except ArmError as exc:
            raise _UserDataError(f"input {name}: {exc.message}") from None
        host = fake.containers.scratch("jobs", run.folder.name, "inputs", name)
        if fake.blob.download(container, prefix, host) == 0:
            raise _UserDataError(f"input {name}: nothing found at {spec['uri']}")
        binds[host] = f"{INPUTS_ROOT}/{name}"
        inside = f"{INPUTS_ROOT}/{name}"
        values[f"inputs.{name}"] = inside if kind in FOLDER_TYPES else \
            f"{inside}/{Path(prefix).name}"
    for name in properties.get("outputs") or {}:
        host = fake.containers.scratch("jobs", run.folder.name, "outputs", name)
        binds[host] = f"{OUTPUTS_ROOT}/{name}"
        values[f"outputs.{name}"] = f"{OUTPUTS_ROOT}/{name}"
    return binds, values


def _command(template: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        key = f"{match[1]}.{match[2]}"
        if key not in values:
            raise _UserDataError(f"the command uses ${{{{{key}}}}}, which the job does not"
                                 " declare")
        return values[key]

    return BINDING.sub(replace, template)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_environments(fake: Any, job: dict[str, Any], properties: dict[str, Any]
                         ) -> list[dict[str, str]]:
    """The environment of every process, in rank order (nodes × processes per node)."""
    nodes = int((properties.get("resources") or {}).get("instanceCount") or 1)
    distribution = properties.get("distribution") or {}
    kind = str(distribution.get("distributionType", "")).lower()
    per_node = int(distribution.get("processCountPerInstance") or 1) if kind else 1
    workspace = job["id"].split("/")
    base = {"AZUREML_RUN_ID": job["name"], "AZUREML_ARM_SUBSCRIPTION": workspace[2],
            "AZUREML_ARM_RESOURCEGROUP": workspace[4], "AZUREML_ARM_WORKSPACE_NAME": workspace[8],
            "AZUREML_ARM_PROJECT_NAME": properties.get("experimentName") or "Default",
            "AZUREML_EXPERIMENT_ID": "00000000-0000-0000-0000-0000000000ee",
            "AZUREML_SERVICE_ENDPOINT": fake.url, "AZUREML_NODE_COUNT": str(nodes),
            **(properties.get("environmentVariables") or {})}
    port = str(_free_port())
    result = []
    for node in range(nodes):
        for local in range(per_node):
            rank = node * per_node + local
            env = dict(base, AZUREML_CR_NODE_RANK=str(node))
            if kind == "pytorch":
                env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port,
                           WORLD_SIZE=str(nodes * per_node), NODE_RANK=str(node),
                           RANK=str(rank), LOCAL_RANK=str(local))
            elif kind == "mpi":
                env.update(OMPI_COMM_WORLD_RANK=str(rank),
                       OMPI_COMM_WORLD_SIZE=str(nodes * per_node),
                           OMPI_COMM_WORLD_LOCAL_RANK=str(local),
                           OMPI_COMM_WORLD_LOCAL_SIZE=str(per_node),
                           AZ_BATCHAI_MPI_MASTER_NODE="127.0.0.1")
            result.append(env)
    return result


def _run_processes(fake: Any, run: JobRun, properties: dict[str, Any], binds: dict[Path, str],
                   values: dict[str, str]) -> list[tuple[int, str]]:
    """Start every process, stream its logs, wait; ``(exit code, stderr tail)`` per rank."""
    job = fake.store.get(run.job_id)
    command = _command(properties["command"], values)
    environments = process_environments(fake, job, properties)
    logs = fake.containers.scratch("jobs", run.folder.name, "logs", LOGS)
    followers = []
    for rank, env in enumerate(environments):
        if run.canceled.is_set():  # canceled while the first ranks started: start no more
            break
        name = "std_log.txt" if len(environments) == 1 else f"std_log_process_{rank}.txt"
        run.log_files[f"{LOGS}/{name}"] = logs / name
        (logs / name).touch()
        container = fake.containers.start(
            f"azmlfake-{job['name'][:40]}-{rank}-{fake.session_id[:8]}", run.image,
            entrypoint=["/bin/sh", "-c"], command=[command], environment=env, binds=binds,
            role="job")
        run.containers.append(container)
        follower = threading.Thread(target=_follow, args=(container, logs / name), daemon=True)
        follower.start()
        followers.append(follower)
    results = []
    for container, follower in zip(run.containers, followers, strict=True):
        try:
            code, _, stderr = containers.wait(container)
        except Exception:  # noqa: BLE001 - removed by a cancel: the engine's error varies
            code, stderr = 137, "canceled"
        follower.join(timeout=30)
        tail = " | ".join(stderr.strip().splitlines()[-ERROR_LINES:])
        results.append((code, tail))
    return results


def _follow(container: Any, path: Path) -> None:
    try:
        with path.open("ab") as out:
            for chunk in container.logs(stream=True, follow=True):
                out.write(chunk)
                out.flush()
    except Exception:  # noqa: BLE001 - removed while streaming: the log ends there
        return


def _upload_outputs(fake: Any, run: JobRun, properties: dict[str, Any]) -> None:
    job = fake.store.get(run.job_id)
    stores = _datastores(fake, run)
    for name, spec in (job["properties"].get("outputs") or {}).items():
        host = run.folder / "outputs" / name
        container, prefix = fake.blob.locate(spec["uri"], stores)
        fake.blob.upload(host, container, prefix)
