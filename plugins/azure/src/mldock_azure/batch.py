"""``mldock batch`` on Azure ML: a command job running the image over the input folder.

Why a command job and not a batch endpoint: an Azure ML batch deployment of a model runs Azure's
own driver, which calls a *scoring script* (``init()`` / ``run(mini_batch)``) inside an image
that must carry ``azureml-core`` and ``azureml-dataset-runtime``; it cannot run an image's own
server. Taking that route would mean adding Azure's packages to the image and a second entry
point to the user's code, which is the opposite of one image everywhere. A batch endpoint is also
a standing resource, where ``mldock batch`` is one job over one input, as SageMaker's transform
job is. So mldock submits what an Azure ML user would run by hand for a custom image: a command
job, on the configured compute cluster (or serverless with ``serve_instance_type``), with

* the registered model as a read-only ``custom_model`` input,
* the input folder as a read-only ``uri_folder`` input and the output folder as a mounted
  ``uri_folder`` output (``azureml://datastores/…`` paths, or ``az://container/prefix`` mapped
  to the workspace datastore on that container),
* the image as the job's environment, unchanged, and as command the stdlib driver of
  :mod:`mldock_azure.batch_driver`, which starts the image's own server and posts every file to
  it: the answers are those of the online endpoint. ``<file>.out`` holds each file's answers
  (one JSON line per record for CSV and JSON Lines).

``BatchRequest.options`` may set ``accept`` (the answers' media type). The job is tagged like
every mldock resource; Ctrl-C leaves it running (it says how to follow it).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mldock.errors import MldockError, UsageError
from mldock.interfaces import BatchRequest, BatchResult, ProgressSink, null_progress
from mldock.runtime.names import ENV_RUN_ID

from mldock_azure.config import AzureMLOptions
from mldock_azure.errors import translated
from mldock_azure.modeldata import RegisteredModel
from mldock_azure.names import experiment_name, join, stamp, tags_for

TERMINAL = {"Completed": "finished", "Failed": "failed", "Canceled": "killed",
            "NotResponding": "failed"}
DRIVER = Path(__file__).with_name("batch_driver.py")
WAIT_GRACE_S = 1800  # queueing and node start-up come on top of the job's own timeout


def driver_command() -> str:
    """``python3 -c <driver> ${{inputs.model}} …``: the job's command line (POSIX shell)."""
    source = DRIVER.read_text(encoding="utf-8")
    if "${{" in source:  # Azure ML would substitute it as a job binding
        raise MldockError("the batch driver holds '${{', which Azure ML would substitute")
    return (f"python3 -c {shlex.quote(source)} ${{{{inputs.model}}}} ${{{{inputs.data}}}}"
            " ${{outputs.predictions}} ${{inputs.content_type}} ${{inputs.accept}}")


def batch_job(request: BatchRequest, options: AzureMLOptions, *, name: str, project: str,
              image: str, model: RegisteredModel, input_path: str, output_path: str) -> Any:
    """The command job (an ``azure.ai.ml`` ``Command``) for ``request``."""
    from azure.ai.ml import Input, Output, command
    from azure.ai.ml.entities import Environment

    content_type = request.content_type.split(";", 1)[0].strip().lower() or "application/json"
    accept = str(request.options.get("accept") or "-")
    serverless = options.compute is None
    return command(
        name=name, display_name=f"mldock batch of run {request.run_id}",
        experiment_name=experiment_name(project),
        description=f"{request.input_uri} -> {request.output_uri}",
        command=driver_command(),
        environment=Environment(image=image, description="the image mldock built"),
        environment_variables={**options.environment, ENV_RUN_ID: request.run_id},
        inputs={"model": Input(type="custom_model", path=model.reference, mode="ro_mount"),
                "data": Input(type="uri_folder", path=input_path, mode="ro_mount"),
                "content_type": content_type, "accept": accept},
        outputs={"predictions": Output(type="uri_folder", path=output_path, mode="rw_mount")},
        compute=options.compute, instance_count=1,
        instance_type=options.serve_instance_type if serverless else None,
        timeout=options.timeout_s,
        tags=tags_for(project, "batch", run_id=request.run_id, extra=options.tags))


class BatchRunner:
    """Runs one batch job to its end.

    Args:
        clients: the workspace's clients (:class:`~mldock_azure.workspace.AzureMLClients`).
        options: ``[deploy.azureml]``.
        project: the project's name (job name, experiment, tags).
        poll_s: seconds between two looks at the job.
        resolve: the ``https://`` URL of an ``az://`` URI (the project's store knows the
            account); it tells datastores of same-named containers apart, and is how an input
            on a container without a datastore is read.
        account: the storage account of ``az://`` URIs, when ``resolve`` cannot tell.
    """

    def __init__(self, clients: Any, options: AzureMLOptions, *, project: str,
                 poll_s: float = 15.0, resolve: Callable[[str], str] | None = None,
                 account: str | None = None):
        self.clients = clients
        self.options = options
        self.project = project
        self.poll_s = poll_s
        self.resolve = resolve
        self.account = account

    def run(self, request: BatchRequest, *, image: str, model: RegisteredModel,
            progress: ProgressSink = null_progress) -> BatchResult:
        input_path = self.location(request.input_uri, "--input")
        output_path = self.location(request.output_uri, "--output")
        name = join(f"{self.project}-batch", stamp())
        job = batch_job(request, self.options, name=name, project=self.project, image=image,
                        model=model, input_path=input_path, output_path=output_path)
        with translated(f"submit batch job {name}", resource=f"job {name}"):
            self.clients.ml.jobs.create_or_update(job)
        where = self.options.compute or f"serverless {self.options.serve_instance_type}"
        progress(f"batch job {name}: {request.input_uri} -> {request.output_uri} on {where}")
        try:
            found = self._wait(name, progress)
        except KeyboardInterrupt:
            progress(f"batch job {name} keeps running on Azure ML; follow it with: az ml job"
                     f" show -n {name}, or cancel it: az ml job cancel -n {name}")
            raise
        status = TERMINAL[status_text(found.status)]
        reason = None
        if status != "finished":
            reason = (f"Azure ML reported the job {status_text(found.status)}; its log: az ml"
                      f" job stream -n {name}")
        return BatchResult(job_id=name, status=status, output_uri=request.output_uri,
                           failure_reason=reason)

    def _wait(self, name: str, progress: ProgressSink) -> Any:
        """Until the job ends; Azure ML cancels it after ``timeout_s``, so a job still not
        ended well after that is reported rather than waited on for ever."""
        deadline = time.monotonic() + self.options.timeout_s + WAIT_GRACE_S
        shown = None
        while True:
            with translated(f"read batch job {name}", resource=f"job {name}"):
                found = self.clients.ml.jobs.get(name)
            status = status_text(found.status)
            if status != shown:
                progress(f"{name}: {status}")
                shown = status
            if status in TERMINAL:
                return found
            if time.monotonic() > deadline:
                raise MldockError(f"batch job {name} is still {status} after its timeout",
                                  hint=f"follow it with 'az ml job show -n {name}'")
            time.sleep(self.poll_s)

    # --- where the data is ----------------------------------------------------------------------
    def location(self, uri: str, label: str) -> str:
        """``uri`` as an Azure ML job path.

        ``azureml://`` paths are used as they are. ``az://container/prefix`` goes on the
        workspace datastore of that container (the account, when known, must match too), so the
        job reads and writes with the datastore's credentials; an input on a container without
        a datastore is read from its ``https://`` URL instead (``resolve``), which Azure ML
        mounts with the job's identity. Outputs need a datastore: Azure ML writes nowhere else.
        """
        if uri.startswith("azureml://"):
            return uri
        if not uri.startswith("az://"):
            raise UsageError(f"{label} {uri}: Azure ML batch jobs read and write blob storage",
                             hint="give az://<container>/<prefix> or"
                                  " azureml://datastores/<name>/paths/<prefix>")
        container, _, prefix = uri[len("az://"):].partition("/")
        url = self._url(uri)
        account = self.account or account_of(url)
        datastore = self._datastore_of(container, account)
        if datastore is not None:
            return f"azureml://datastores/{datastore}/paths/{prefix.strip('/')}/"
        if url is not None and label == "--input":
            return url
        where = f" of account {account!r}" if account else ""
        raise UsageError(f"{label} {uri}: workspace {self.options.workspace!r} has no datastore"
                         f" on container {container!r}{where}",
                         hint="create one ('az ml datastore create --type azure_blob"
                              f" --container-name {container} …') or give an"
                              " azureml://datastores/<name>/paths/<prefix> URI")

    def _url(self, uri: str) -> str | None:
        if self.resolve is None:
            return None
        try:
            return self.resolve(uri)
        except MldockError:  # no az:// store configured: a datastore may still map it
            return None

    def _datastore_of(self, container: str, account: str | None) -> str | None:
        with translated("list the workspace's datastores"):
            stores = list(self.clients.ml.datastores.list())
        matches = sorted(str(s.name) for s in stores
                         if getattr(s, "container_name", None) == container
                         and account in (None, getattr(s, "account_name", None)))
        return matches[0] if matches else None


def status_text(status: Any) -> str:
    """A job's status as Azure ML spells it (the SDK hands out a ``JobStatus`` enum, whose
    ``str()`` is ``JobStatus.COMPLETED``)."""
    return str(getattr(status, "value", status))


def account_of(url: str | None) -> str | None:
    """The storage account of a blob URL: ``https://<account>.blob.<suffix>/…``, or the first
    path segment of an emulator's ``http://127.0.0.1:10000/<account>/…``."""
    if not url:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if ".blob." in host:
        return host.split(".", 1)[0]
    first = parts.path.lstrip("/").split("/", 1)[0]
    return first or None
