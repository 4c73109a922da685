"""Vertex AI ``customJobs``: create (and run), get, list, cancel, delete.

The body is parsed into ``aiplatform_v1.CustomJob`` and checked the way the service checks it
before accepting (display name, labels, worker pools, machine and container specs, output
directory, service account, network, CMEK key); output-only fields the client sent are dropped.
"""

from __future__ import annotations

import re
from typing import Any

from vertex_fake import listing, training, validate, wire
from vertex_fake.errors import ApiError, invalid
from vertex_fake.routing import Request

BASE = "/v1/projects/{project}/locations/{location}/customJobs"
TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED",
            "JOB_STATE_EXPIRED", "JOB_STATE_PARTIALLY_SUCCEEDED"}
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
OUTPUT_ONLY = ("name", "state", "create_time", "start_time", "end_time", "update_time", "error",
               "web_access_uris")


def _types() -> Any:
    from google.cloud.aiplatform_v1 import types

    return types


def check_pool(spec: Any, field: str, first: bool) -> None:
    """One ``WorkerPoolSpec``: empty is allowed after the first pool (a placeholder)."""
    types = _types()
    empty = type(spec).pb(spec).ByteSize() == 0
    if empty and not first:
        return
    if empty or not (spec.container_spec.image_uri or spec.python_package_spec.executor_image_uri):
        raise invalid(f"{field}.container_spec.image_uri must be set (or a python_package_spec).",
                      f"{field}.container_spec.image_uri")
    validate.image_uri(spec.container_spec.image_uri, f"{field}.container_spec.image_uri")
    validate.machine_type(spec.machine_spec.machine_type, f"{field}.machine_spec.machine_type")
    if spec.replica_count < 1:
        raise invalid(f"{field}.replica_count must be at least 1.", f"{field}.replica_count")
    if first and spec.replica_count != 1:
        raise invalid(f"{field}.replica_count must be 1: the first worker pool holds the"
                      " primary replica only.", f"{field}.replica_count")
    unspecified = types.AcceleratorType.ACCELERATOR_TYPE_UNSPECIFIED
    if (spec.machine_spec.accelerator_type != unspecified) != \
            (spec.machine_spec.accelerator_count > 0):
        raise invalid(f"{field}.machine_spec: accelerator_type and accelerator_count go"
                      " together.", f"{field}.machine_spec.accelerator_count")
    disk = spec.disk_spec
    if disk.boot_disk_size_gb and not 100 <= disk.boot_disk_size_gb <= 64000:
        raise invalid(f"{field}.disk_spec.boot_disk_size_gb must be within [100, 64000].",
                      f"{field}.disk_spec.boot_disk_size_gb")
    if disk.boot_disk_type and disk.boot_disk_type not in ("pd-ssd", "pd-standard"):
        raise invalid(f"{field}.disk_spec.boot_disk_type must be pd-ssd or pd-standard.",
                      f"{field}.disk_spec.boot_disk_type")
    for var in spec.container_spec.env:
        if not ENV_NAME.fullmatch(var.name):
            raise invalid(f"{field}.container_spec.env: invalid variable name {var.name!r}.",
                          f"{field}.container_spec.env")


def check_job(job: Any) -> None:
    validate.display_name(job.display_name, "custom_job.display_name")
    validate.labels(job.labels, "custom_job.labels")
    validate.encryption(job.encryption_spec, "custom_job.encryption_spec")
    spec = job.job_spec
    pools = spec.worker_pool_specs
    if not pools:
        raise invalid("custom_job.job_spec.worker_pool_specs must be set.",
                      "custom_job.job_spec.worker_pool_specs")
    if len(pools) > 4:
        raise invalid("custom_job.job_spec.worker_pool_specs: at most 4 worker pools.",
                      "custom_job.job_spec.worker_pool_specs")
    for index, pool in enumerate(pools):
        check_pool(pool, f"custom_job.job_spec.worker_pool_specs[{index}]", index == 0)
    validate.gcs_uri(spec.base_output_directory.output_uri_prefix,
                     "custom_job.job_spec.base_output_directory.output_uri_prefix")
    validate.optional(validate.SERVICE_ACCOUNT, spec.service_account,
                      "custom_job.job_spec.service_account", "service account email")
    validate.optional(validate.NETWORK, spec.network, "custom_job.job_spec.network",
                      "network (projects/<number>/global/networks/<name>)")


def create(fake: Any, request: Request) -> Any:
    parent = fake.parent(request.params, "aiplatform.customJobs.create")
    job = request.message(_types().CustomJob)
    check_job(job)
    for name in OUTPUT_ONLY:
        job._pb.ClearField(name)
    job.name = f"{parent}/customJobs/{wire.new_id()}"
    job.state = _types().JobState.JOB_STATE_PENDING
    job.create_time = job.update_time = wire.now()
    fake.put("customJobs", job.name, job)
    training.start(fake, job.name)
    return job


def get(fake: Any, request: Request) -> Any:
    parent = fake.parent(request.params, "aiplatform.customJobs.get")
    return fake.custom_job(f"{parent}/customJobs/{request.params['job']}")


def list_jobs(fake: Any, request: Request) -> dict[str, Any]:
    parent = fake.parent(request.params, "aiplatform.customJobs.list")
    return listing.page(fake, request, "customJobs", parent, "customJobs")


def cancel(fake: Any, request: Request) -> dict[str, Any]:
    parent = fake.parent(request.params, "aiplatform.customJobs.cancel")
    name = f"{parent}/customJobs/{request.params['job']}"
    with fake.lock:
        job = fake.custom_job(name)
        if job.state.name in TERMINAL:
            raise ApiError("FAILED_PRECONDITION", f"Cannot cancel {name}: it is already in"
                           f" state {job.state.name}.")
        job.state = _types().JobState.JOB_STATE_CANCELLING
        job.update_time = wire.now()
    training.cancel(fake, name)
    return {}


def delete(fake: Any, request: Request) -> Any:
    from google.protobuf import empty_pb2

    parent = fake.parent(request.params, "aiplatform.customJobs.delete")
    name = f"{parent}/customJobs/{request.params['job']}"
    with fake.lock:
        job = fake.custom_job(name)
        if job.state.name not in TERMINAL:
            raise ApiError("FAILED_PRECONDITION", f"Cannot delete {name} in state"
                           f" {job.state.name}: cancel it first.")
        fake.remove("customJobs", name)
    operation = fake.operations.start(name, delete_metadata())
    operation.finish(empty_pb2.Empty())
    return operation


def delete_metadata() -> Any:
    types = _types()
    return types.DeleteOperationMetadata(generic_metadata=types.GenericOperationMetadata(
        create_time=wire.now(), update_time=wire.now()))


ROUTES = [
    ("POST", BASE, create),
    ("GET", BASE, list_jobs),
    ("GET", BASE + "/{job}", get),
    ("DELETE", BASE + "/{job}", delete),
    ("POST", BASE + "/{job}:cancel", cancel),
]
