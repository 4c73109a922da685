"""Azure ML command jobs: the job built from a ``TrainingJob``, and following it to its end.

The job is built by a pure function (:func:`command_job`) so what is sent can be read and checked
without Azure. Azure ML may not run the image's ENTRYPOINT, so the command names the runtime
itself (``docs/container.md``)::

    mldock-runtime train --model-dir=${{outputs.model}} --input-train=${{inputs.train}} --lr=0.1

Channels are ``uri_folder`` inputs (mounted, read-only), the model a ``uri_folder`` output of the
job (``azureml://jobs/<job>/outputs/model``: what a model is registered from, with the job as its
lineage). Several nodes need a distribution: PyTorch's launcher sets ``MASTER_ADDR``,
``MASTER_PORT``, ``WORLD_SIZE``, ``NODE_RANK``, ``RANK`` and ``LOCAL_RANK``, MPI the
``OMPI_COMM_WORLD_*`` ranks, which is what the runtime reads to tell the primary node.

:class:`TrainingRunner` submits the job and polls it: status changes and the user log go to
``progress``, ``mldock-metric`` lines to ``on_metrics`` as they arrive (:mod:`~mldock_azure.logs`),
the run history's error once it fails. Ctrl-C (core raises KeyboardInterrupt inside ``train``):
on a terminal the user is asked whether to cancel the job; otherwise it is left running and the
way to follow and cancel it is printed. The interrupt is then re-raised (core records ``killed``).
"""

from __future__ import annotations

import json
import re
import shlex
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
from mldock.runtime.names import ENV_PROJECT, ENV_RUN_ID

from mldock_azure.config import AzureMLOptions
from mldock_azure.errors import translated
from mldock_azure.logs import LogFollower, failure_message, run_details
from mldock_azure.names import experiment_name, job_name, tags_for
from mldock_azure.workspace import AzureMLClients

TERMINAL = {"Completed": "finished", "Failed": "failed", "Canceled": "killed",
            "NotResponding": "failed"}
OVERRIDABLE = ("compute", "instance_type", "instance_count", "distribution",
               "processes_per_node", "low_priority", "timeout_s")
"""Keys of ``TrainingJob.options`` that override ``[deploy.azureml]`` for one job."""
READABLE_SCHEMES = ("azureml://", "https://", "http://", "wasbs://", "abfss://", "adl://")
INPUT_KEY = re.compile(r"[^A-Za-z0-9_]")
MAX_HYPERPARAMETERS = 100


def effective_options(options: AzureMLOptions, overrides: Mapping[str, Any]) -> AzureMLOptions:
    """``options`` with the job's own overrides (compute, nodes, distribution…), validated.

    Several nodes asked for one job (``mldock train --instances N``) with no distribution in the
    config get PyTorch's launcher: with one process per node it only tells each node its rank,
    which the runtime needs to publish one model, and asks nothing of the user's code.
    """
    from pydantic import ValidationError

    picked = {key: overrides[key] for key in OVERRIDABLE if overrides.get(key) is not None}
    if not picked:
        return options
    values = {**options.model_dump(), **picked}
    if int(values.get("instance_count") or 1) > 1 and values.get("distribution") == "none":
        values["distribution"] = "pytorch"
    try:
        return AzureMLOptions.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error.get("loc", ())) or "options"
        raise UsageError(f"job option {where}: {error.get('msg', 'invalid')}",
                         hint="check the values given to this job (--instances, …) against"
                              " [deploy.azureml]") from None


def hyperparameter_args(values: Mapping[str, Any]) -> list[str]:
    """``--key=value`` words, values encoded like SageMaker's (strings as they are, the rest as
    JSON) so the runtime decodes them back the same way; each word shell-quoted, since Azure ML
    runs the command through a shell."""
    if len(values) > MAX_HYPERPARAMETERS:
        raise UsageError(f"{len(values)} hyperparameters: mldock passes at most"
                         f" {MAX_HYPERPARAMETERS} to an Azure ML job",
                         hint="pass fewer, or a file in a data channel")
    words = []
    for key, value in values.items():
        text = value if isinstance(value, str) else json.dumps(value)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", str(key)):
            raise UsageError(f"hyperparameter name {key!r} cannot be a command-line option",
                             hint="use letters, digits, '_', '.' and '-', starting with a letter")
        if "${{" in text:
            raise UsageError(f"hyperparameter {key!r} contains '${{{{', which Azure ML reads as"
                             " a binding in the job's command", hint="pass it in a data channel")
        words.append(shlex.quote(f"--{key}={text}"))
    return words


def input_key(channel: str) -> str:
    """The job input's name for a channel (Azure ML wants an identifier: ``my-data`` →
    ``my_data``); the runtime still sees the channel's own name."""
    key = INPUT_KEY.sub("_", channel)
    return key if key[:1].isalpha() or key[:1] == "_" else f"ch_{key}"


def input_paths(inputs: Mapping[str, str], resolve: Callable[[str], str]) -> dict[str, str]:
    """Channel → a path Azure ML can mount: ``azureml://``, ``https://`` and ``wasbs://`` as
    they are, ``az://`` through ``resolve`` (the store's blob URL); local paths are refused."""
    paths: dict[str, str] = {}
    for name, uri in sorted(inputs.items()):
        text = str(uri)
        if text.startswith("az://"):
            text = resolve(text)
        if not text.startswith(READABLE_SCHEMES):
            raise UsageError(f"data channel {name!r} is {uri}: Azure ML reads channels from Azure"
                             " storage", hint='set [storage] uri = "az://<container>/<prefix>"'
                             " for the azure environment, so local data is staged there, or"
                             " give an azureml:// or https:// URI in [data]")
        paths[name] = text
    keys = [input_key(name) for name in paths]
    if len(set(keys)) != len(keys):
        raise UsageError(f"data channels {sorted(paths)} clash once made Azure ML input names"
                         f" ({keys})", hint="rename the channels in [data]")
    return paths


def training_command(channels: Mapping[str, str], hyperparameters: Mapping[str, Any]) -> str:
    """The job's command: the runtime, the model output, one ``--input-<ch>`` per channel, and
    the hyperparameters."""
    words = ["mldock-runtime", "train", "--model-dir=${{outputs.model}}"]
    words += [f"--input-{shlex.quote(name)}=${{{{inputs.{input_key(name)}}}}}"
              for name in channels]
    return " ".join(words + hyperparameter_args(hyperparameters))


def distribution_of(options: AzureMLOptions) -> Any:
    """The SDK's distribution for the options (``None`` for one process on one node)."""
    from azure.ai.ml import MpiDistribution, PyTorchDistribution

    if options.distribution == "pytorch":
        return PyTorchDistribution(process_count_per_instance=options.processes_per_node)
    if options.distribution == "mpi":
        return MpiDistribution(process_count_per_instance=options.processes_per_node)
    return None


def command_job(job: TrainingJob, options: AzureMLOptions, *, name: str, project: str,
                channels: Mapping[str, str]) -> Any:
    """The command job for ``job`` (see the module docstring), as ``command()`` builds it and
    ``jobs.create_or_update`` takes it; ``channels`` from :func:`input_paths`."""
    from azure.ai.ml import Input, Output, command
    from azure.ai.ml.entities import Environment

    environment = {**options.environment, ENV_RUN_ID: job.run_id, ENV_PROJECT: project,
                   **dict(job.environment)}
    serverless = options.compute is None
    return command(
        name=name, display_name=f"{project} {job.run_id}",
        description=f"mldock run {job.run_id} of project {project}",
        experiment_name=experiment_name(project),
        command=training_command(channels, job.hyperparameters),
        environment=Environment(image=job.image),
        environment_variables=environment,
        inputs={input_key(ch): Input(type="uri_folder", path=path, mode="ro_mount")
                for ch, path in channels.items()},
        outputs={"model": Output(type="uri_folder", mode="rw_mount")},
        compute=options.compute,
        instance_type=options.instance_type if serverless else None,
        instance_count=options.instance_count,
        distribution=distribution_of(options),
        tags=tags_for(project, "training", run_id=job.run_id, extra=options.tags),
        timeout=options.timeout_s,
        job_tier="Spot" if options.low_priority else None,
    )


def model_uri(name: str) -> str:
    """The trained model: the job's named output, as Azure ML registers models from it."""
    return f"azureml://jobs/{name}/outputs/model"


def result_of(name: str, status: str, details: Mapping[str, Any], run_id: str,
              metrics: Mapping[str, float] | None = None) -> TrainingResult:
    """How a finished job ended, from its status and run-history details."""
    outcome = TERMINAL[status]
    reason = failure_message(dict(details))
    if outcome == "killed" and reason and re.search(r"time ?out|timed out|exceeded", reason, re.I):
        outcome = "failed"
        reason = (f"the job ran out of time: raise [deploy.azureml] timeout_s ({reason})")
    elif outcome == "failed" and not reason:
        reason = (f"Azure ML reported the job {status} without a reason" if status == "Failed"
                  else "the job stopped responding (NotResponding)")
    elif outcome == "killed":
        reason = reason or "the job was canceled"
    finished = outcome == "finished"
    return TrainingResult(run_id=run_id, status=outcome, job_id=name,
                          model_uri=model_uri(name) if finished else None,
                          failure_reason=None if finished else reason,
                          metrics=dict(metrics or {}))


def studio_url(job: Any) -> str | None:
    """The job's page in Azure ML studio, as the service reports it."""
    services = getattr(job, "services", None) or {}
    studio = services.get("Studio") if isinstance(services, dict) else None
    endpoint = getattr(studio, "endpoint", None)
    return str(endpoint) if endpoint else None


def _ask_terminal(question: str) -> bool:
    sys.stderr.write(question)
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


class TrainingRunner:
    """Runs one job to its end. ``interactive`` and ``ask`` decide what Ctrl-C does (replaced in
    tests); ``poll_s`` is the time between two looks at the job and its log; ``resolve`` turns an
    ``az://`` channel into the blob URL Azure ML mounts."""

    def __init__(self, clients: AzureMLClients, options: AzureMLOptions, *, project: str,
                 poll_s: float = 5.0, resolve: Callable[[str], str] | None = None,
                 interactive: Callable[[], bool] = sys.stdin.isatty,
                 ask: Callable[[str], bool] = _ask_terminal):
        self.clients = clients
        self.options = options
        self.project = project
        self.poll_s = poll_s
        self.resolve = resolve or _no_az
        self.interactive = interactive
        self.ask = ask

    def run(self, job: TrainingJob, *, progress: ProgressSink = null_progress,
            on_metrics: MetricsSink | None = None) -> TrainingResult:
        options = effective_options(self.options, job.options)
        name = job_name(self.project, job.run_id)
        channels = input_paths(job.inputs, self.resolve)
        built = command_job(job, options, name=name, project=self.project, channels=channels)
        with translated(f"create job {name}", resource=self.clients.workspace_label):
            created = self.clients.ml.jobs.create_or_update(built)
        where = options.compute or f"serverless {options.instance_type}" + (
            " (low priority)" if options.low_priority else "")
        progress(f"job {name} created: {options.instance_count} x {where}"
                 + (f", {options.distribution}" if options.distribution != "none" else ""))
        if url := studio_url(created):
            progress(f"studio: {url}")
        latest: dict[str, float] = {}

        def sink(metrics: Any) -> None:
            latest.update({m.key: m.value for m in metrics})
            if on_metrics is not None:
                on_metrics(metrics)

        follower = LogFollower(self.clients, name, progress, sink)
        try:
            status, details = self._wait(name, follower, progress)
        except KeyboardInterrupt:
            self._interrupted(name, progress)
            raise
        result = result_of(name, status, details, job.run_id, latest)
        progress(f"job {name}: {status}"
                 + (f" ({result.failure_reason})" if result.failure_reason else ""))
        return result

    def _wait(self, name: str, follower: LogFollower,
              progress: ProgressSink) -> tuple[str, dict[str, Any]]:
        shown: str | None = None
        while True:
            with translated(f"read job {name}", resource=f"job {name!r}"):
                found = self.clients.ml.jobs.get(name).status
            status = str(getattr(found, "value", found) or "")  # a str enum, or a plain str
            if status != shown:
                progress(f"{name}: status {status}")
                shown = status
            details = run_details(self.clients, name)
            follower.poll(details)
            if status in TERMINAL:
                details = run_details(self.clients, name)  # lines written just before the end
                follower.poll(details, final=True)
                return status, details
            time.sleep(self.poll_s)

    def _interrupted(self, name: str, progress: ProgressSink) -> None:
        """Ask (on a terminal) whether to cancel the job; otherwise say how to follow it."""
        cancel = False
        if self.interactive():
            try:
                cancel = self.ask(f"cancel job {name} on Azure ML? [y/N] ")
            except (KeyboardInterrupt, EOFError):
                cancel = False
        if cancel:
            try:
                with translated(f"cancel job {name}", resource=f"job {name!r}"):
                    self.clients.ml.jobs.begin_cancel(name)
                progress(f"canceling job {name}: Azure ML stops its processes (SIGTERM: the"
                         " checkpoint hook runs)")
                return
            except MldockError as exc:
                progress(f"could not cancel job {name}: {exc}")
        scope = f"-g {self.options.resource_group} -w {self.options.workspace}"
        progress(f"job {name} keeps running on Azure ML; follow it with:")
        progress(f"  az ml job stream -n {name} {scope}")
        progress(f"cancel it with: az ml job cancel -n {name} {scope}")


def _no_az(uri: str) -> str:
    raise UsageError(f"{uri}: az:// channels need the project's storage to be az:// too",
                     hint='set [storage] uri = "az://<container>/<prefix>" for the azure'
                          " environment, or give the channel as an azureml:// or https:// URI")
