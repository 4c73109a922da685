"""Vertex AI ``batchPredictionJobs``: create (and run), get, list, cancel, delete.

Checked like the service: display name, labels, an existing model, ``gs://`` inputs in a
format the fake runs (``jsonl``, ``csv``; others are a 501 naming the limit), a ``gs://`` output
prefix with ``jsonl`` predictions, dedicated resources with a machine type (a custom-container
model has no automatic resources).
"""

from __future__ import annotations

from typing import Any

from vertex_fake import batch, listing, validate, wire
from vertex_fake.api_jobs import OUTPUT_ONLY, TERMINAL, delete_metadata
from vertex_fake.errors import ApiError, invalid
from vertex_fake.routing import Request

BASE = "/v1/projects/{project}/locations/{location}/batchPredictionJobs"
RUNNABLE_FORMATS = ("jsonl", "csv")
VERTEX_FORMATS = ("jsonl", "csv", "tf-record", "tf-record-gzip", "file-list", "bigquery")


def check_job(job: Any) -> None:
    field = "batch_prediction_job"
    validate.display_name(job.display_name, f"{field}.display_name")
    validate.labels(job.labels, f"{field}.labels")
    validate.encryption(job.encryption_spec, f"{field}.encryption_spec")
    fmt = job.input_config.instances_format
    if fmt not in VERTEX_FORMATS:
        raise invalid(f"{field}.input_config.instances_format {fmt!r} is not supported.",
                      f"{field}.input_config.instances_format")
    if fmt not in RUNNABLE_FORMATS:
        raise ApiError("UNIMPLEMENTED", f"vertex fake: instances_format {fmt!r} is valid but"
                       f" the fake runs only {', '.join(RUNNABLE_FORMATS)}.")
    uris = job.input_config.gcs_source.uris
    if not uris:
        raise invalid(f"{field}.input_config.gcs_source.uris must be set.",
                      f"{field}.input_config.gcs_source.uris")
    for uri in uris:
        validate.gcs_uri(uri, f"{field}.input_config.gcs_source.uris", required=True)
    if job.output_config.predictions_format != "jsonl":
        raise invalid(f"{field}.output_config.predictions_format must be jsonl for gs://"
                      " outputs.", f"{field}.output_config.predictions_format")
    validate.gcs_uri(job.output_config.gcs_destination.output_uri_prefix,
                     f"{field}.output_config.gcs_destination.output_uri_prefix", required=True)
    resources = job.dedicated_resources
    validate.machine_type(resources.machine_spec.machine_type,
                          f"{field}.dedicated_resources.machine_spec.machine_type")
    if resources.starting_replica_count < 0 or (
            resources.max_replica_count and
            resources.max_replica_count < resources.starting_replica_count):
        raise invalid(f"{field}.dedicated_resources: replica counts are inconsistent.",
                      f"{field}.dedicated_resources")


def create(fake: Any, request: Request) -> Any:
    from google.cloud.aiplatform_v1 import types

    parent = fake.parent(request.params, "aiplatform.batchPredictionJobs.create")
    job = request.message(types.BatchPredictionJob)
    check_job(job)
    if not job.model:
        raise invalid("batch_prediction_job.model must be set.", "batch_prediction_job.model")
    model = fake.model(job.model)
    for name in (*OUTPUT_ONLY, "output_info", "completion_stats", "partial_failures",
                 "resources_consumed"):
        if name != "web_access_uris":
            job._pb.ClearField(name)
    job.model = model.name
    job.model_version_id = model.version_id
    job.name = f"{parent}/batchPredictionJobs/{wire.new_id()}"
    job.state = types.JobState.JOB_STATE_PENDING
    job.create_time = job.update_time = wire.now()
    fake.put("batchPredictionJobs", job.name, job)
    batch.start(fake, job.name)
    return job


def _name(fake: Any, request: Request, permission: str) -> str:
    return f"{fake.parent(request.params, permission)}/batchPredictionJobs/{request.params['job']}"


def get(fake: Any, request: Request) -> Any:
    return fake.batch_job(_name(fake, request, "aiplatform.batchPredictionJobs.get"))


def list_jobs(fake: Any, request: Request) -> dict[str, Any]:
    parent = fake.parent(request.params, "aiplatform.batchPredictionJobs.list")
    return listing.page(fake, request, "batchPredictionJobs", parent, "batchPredictionJobs")


def cancel(fake: Any, request: Request) -> dict[str, Any]:
    from google.cloud.aiplatform_v1 import types

    name = _name(fake, request, "aiplatform.batchPredictionJobs.cancel")
    with fake.lock:
        job = fake.batch_job(name)
        if job.state.name in TERMINAL:
            raise ApiError("FAILED_PRECONDITION", f"Cannot cancel {name}: it is already in"
                           f" state {job.state.name}.")
        job.state = types.JobState.JOB_STATE_CANCELLING
    batch.cancel(fake, name)
    return {}


def delete(fake: Any, request: Request) -> Any:
    from google.protobuf import empty_pb2

    name = _name(fake, request, "aiplatform.batchPredictionJobs.delete")
    with fake.lock:
        job = fake.batch_job(name)
        if job.state.name not in TERMINAL:
            raise ApiError("FAILED_PRECONDITION", f"Cannot delete {name} in state"
                           f" {job.state.name}: cancel it first.")
        fake.remove("batchPredictionJobs", name)
    operation = fake.operations.start(name, delete_metadata())
    operation.finish(empty_pb2.Empty())
    return operation


ROUTES = [
    ("POST", BASE, create),
    ("GET", BASE, list_jobs),
    ("GET", BASE + "/{job}", get),
    ("DELETE", BASE + "/{job}", delete),
    ("POST", BASE + "/{job}:cancel", cancel),
]
