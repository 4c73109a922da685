"""Vertex AI batch prediction: the run's model over every JSON Lines or CSV file under a prefix.

A ``BatchPredictionJob`` needs a Vertex model, so one is uploaded for the job (labelled
``mldock-role=batch``) and deleted once the job has ended. Vertex reads the input itself and
sends the serving container ``{"instances": [...]}`` requests on its predict route: one JSON
value per line of a JSON Lines file, one array per CSV row (after the header line). The
predictions are written as JSON Lines under a folder Vertex creates inside the output prefix;
:class:`~mldock.interfaces.BatchResult` names that folder.

``BatchRequest.options`` may override ``instances_format`` (``jsonl``, ``csv``, ``file-list``,
``tf-record``…), ``predictions_format``, ``machine_type`` and ``replicas``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

from mldock.errors import MldockError, UsageError
from mldock.interfaces import BatchRequest, BatchResult, ProgressSink, null_progress
from mldock.runtime.names import ENV_RUN_ID

from mldock_gcp.clients import VertexClients
from mldock_gcp.config import VertexOptions
from mldock_gcp.errors import translated
from mldock_gcp.modeldata import split_uri, storage_client
from mldock_gcp.models import delete_model, model_resource, upload_model
from mldock_gcp.names import display_name, labels, stamp

ROLE = "batch"
FORMATS = {"text/csv": "csv", "application/jsonlines": "jsonl", "application/jsonl": "jsonl",
           "application/x-jsonlines": "jsonl", "application/x-ndjson": "jsonl",
           "application/json": "jsonl"}
"""Content type → Vertex ``instancesFormat``. Vertex has no whole-file JSON format: a JSON file
is read as JSON Lines (one instance per line), as ``mldock batch``'s default type suggests."""
TERMINAL = {"JOB_STATE_SUCCEEDED": "finished", "JOB_STATE_FAILED": "failed",
            "JOB_STATE_EXPIRED": "failed", "JOB_STATE_PARTIALLY_SUCCEEDED": "failed",
            "JOB_STATE_CANCELLED": "killed"}


def instances_format(request: BatchRequest) -> str:
    """Vertex's ``instancesFormat`` for the request's content type (or its override)."""
    chosen = request.options.get("instances_format")
    if chosen:
        return str(chosen)
    content_type = request.content_type.split(";", 1)[0].strip().lower()
    if content_type not in FORMATS:
        raise UsageError(f"--content-type {request.content_type}: Vertex AI batch prediction"
                         " reads JSON Lines or CSV files",
                         hint="give --content-type text/csv or application/jsonlines")
    return FORMATS[content_type]


def source_uris(clients: VertexClients, uri: str) -> list[str]:
    """What Vertex reads: a file as it is, a folder (``gs://b/in/`` or ``gs://b/in`` with no
    object of that name) as every file in it (Vertex takes wildcards, not prefixes)."""
    if "*" in uri:
        return [uri]
    if not uri.endswith("/"):
        bucket, name = split_uri(uri)
        with translated(f"look up {uri}", resource=uri):
            if storage_client(clients).bucket(bucket).blob(name).exists():
                return [uri]
    return [uri.rstrip("/") + "/*"]


def job_resource(request: BatchRequest, options: VertexOptions, *, name: str, model: str,
                 sources: list[str], tags: Mapping[str, str]) -> Any:
    """The ``BatchPredictionJob`` for ``request`` over ``sources`` with ``model``."""
    from google.cloud import aiplatform_v1 as aip

    extra = request.options
    replicas = int(extra.get("replicas") or options.batch_replicas)
    machine = aip.MachineSpec(machine_type=str(extra.get("machine_type")
                                               or options.batch_machine_type))
    job = aip.BatchPredictionJob(
        display_name=name, model=model, labels=dict(tags),
        input_config=aip.BatchPredictionJob.InputConfig(
            instances_format=instances_format(request),
            gcs_source=aip.GcsSource(uris=sources)),
        output_config=aip.BatchPredictionJob.OutputConfig(
            predictions_format=str(extra.get("predictions_format") or "jsonl"),
            gcs_destination=aip.GcsDestination(output_uri_prefix=request.output_uri)),
        dedicated_resources=aip.BatchDedicatedResources(
            machine_spec=machine, starting_replica_count=replicas, max_replica_count=replicas))
    if options.service_account:
        job.service_account = options.service_account
    if options.encryption_key:
        job.encryption_spec = aip.EncryptionSpec(kms_key_name=options.encryption_key)
    return job


def check_locations(request: BatchRequest) -> None:
    for label, uri in (("--input", request.input_uri), ("--output", request.output_uri)):
        if not uri.startswith("gs://"):
            raise UsageError(f"{label} {uri}: Vertex AI batch prediction reads and writes Cloud"
                             " Storage", hint="give gs://<bucket>/<prefix> URIs")


class BatchRunner:
    """Runs one batch prediction job to its end and removes the model it uploaded for it."""

    def __init__(self, clients: VertexClients, options: VertexOptions, *, project: str,
                 poll_s: float = 15.0):
        self.clients = clients
        self.options = options
        self.project = project
        self.poll_s = poll_s

    def run(self, request: BatchRequest, *, image: str, artifact_uri: str,
            progress: ProgressSink = null_progress) -> BatchResult:
        check_locations(request)
        instances_format(request)  # a refused content type uploads nothing
        name = display_name(self.project, "batch", request.run_id, stamp())
        tags = labels(self.options.labels, project=self.project, role=ROLE,
                      run_id=request.run_id)
        sources = source_uris(self.clients, request.input_uri)
        model = upload_model(self.clients, model_resource(
            name=name, image=image, artifact_uri=artifact_uri, labels=tags,
            environment={ENV_RUN_ID: request.run_id}, options=self.options),
            timeout_s=self.options.deploy_timeout_s, poll_s=self.poll_s)
        job = job_resource(request, self.options, name=name, model=model, sources=sources,
                           tags=tags)
        try:
            with translated(f"create batch prediction job {name}", resource=f"job {name}"):
                created = self.clients.jobs.create_batch_prediction_job(
                    parent=self.clients.parent, batch_prediction_job=job)
        except BaseException:
            self._delete_model(model)
            raise
        resources = job.dedicated_resources
        progress(f"batch prediction job {created.name}: {' '.join(sources)} ->"
                 f" {request.output_uri} on {resources.starting_replica_count} x"
                 f" {resources.machine_spec.machine_type}")
        try:
            found = self._wait(created.name, progress)
        except KeyboardInterrupt:
            progress(f"batch job {created.name} keeps running on Vertex AI (console: Vertex AI >"
                     f" Batch predictions); its model {model} is left for it")
            raise
        self._delete_model(model)
        return self._result(found, request)

    def _wait(self, job: str, progress: ProgressSink) -> Any:
        shown = None
        while True:
            with translated(f"read batch prediction job {job}", resource=f"job {job}"):
                found = self.clients.jobs.get_batch_prediction_job(name=job)
            state = found.state.name
            if state != shown:
                progress(f"{job}: {state.removeprefix('JOB_STATE_')}")
                shown = state
            if state in TERMINAL:
                return found
            time.sleep(self.poll_s)

    def _result(self, found: Any, request: BatchRequest) -> BatchResult:
        state = found.state.name
        status = TERMINAL[state]
        stats = found.completion_stats
        output = found.output_info.gcs_output_directory or request.output_uri
        reason = None
        if status != "finished":
            reason = found.error.message or None
            if state == "JOB_STATE_PARTIALLY_SUCCEEDED":
                reason = (f"{stats.failed_count} of {stats.successful_count + stats.failed_count}"
                          f" instances failed" + (f": {reason}" if reason else ""))
            reason = reason or f"Vertex AI reported the job {state} without a reason"
        return BatchResult(job_id=str(found.name), status=status, output_uri=output,
                           failure_reason=reason)

    def _delete_model(self, model: str) -> None:
        # a leftover model costs nothing; the job's outcome matters more
        with contextlib.suppress(MldockError):
            delete_model(self.clients, model, timeout_s=self.options.deploy_timeout_s,
                         poll_s=self.poll_s)
