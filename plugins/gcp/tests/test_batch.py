"""Vertex AI batch prediction: the job mldock sends, offline; then real jobs on the fake.

The fake runs the batch job for real: it reads the input files from the GCS emulator, starts the
model's serving container, sends it ``{"instances": …}`` requests as Vertex does and writes
``predictions_*.jsonl`` under the output prefix, which the tests read back.
"""

from __future__ import annotations

import uuid

import pytest
from mldock.errors import UsageError
from mldock.interfaces import BatchRequest
from mldock_gcp.batch import check_locations, instances_format, job_resource
from mldock_gcp.config import VertexOptions

IMAGE = "us-central1-docker.pkg.dev/p/mldock/proj@sha256:" + "ef" * 32
KMS = "projects/p/locations/us-central1/keyRings/ring/cryptoKeys/key"


def batch_request(content_type: str = "text/csv", *, bucket: str = "bkt",
                  **options) -> BatchRequest:
    run = uuid.uuid4().hex[:14]
    return BatchRequest(run_id=run, image=IMAGE, model_uri=f"gs://{bucket}/models/{run}",
                        input_uri=f"gs://{bucket}/batch/in/", output_uri=f"gs://{bucket}/batch/out",
                        content_type=content_type, options=options)


# --- the request, offline ------------------------------------------------------------------------


def test_content_types_map_to_vertex_formats():
    assert instances_format(batch_request("text/csv")) == "csv"
    assert instances_format(batch_request("text/csv; charset=utf-8")) == "csv"
    for jsonl in ("application/jsonlines", "application/jsonl", "application/x-jsonlines",
                  "application/json"):
        assert instances_format(batch_request(jsonl)) == "jsonl"
    assert instances_format(batch_request("image/png", instances_format="file-list")) == \
        "file-list"
    with pytest.raises(UsageError, match=r"--content-type image/png: .* JSON Lines or CSV"):
        instances_format(batch_request("image/png"))


def test_the_job_carries_every_option():
    options = VertexOptions(batch_machine_type="n1-highmem-8", batch_replicas=3,
                            service_account="sa@p-123.iam.gserviceaccount.com",
                            encryption_key=KMS)
    request = batch_request("application/jsonlines")
    job = job_resource(request, options, name="proj-batch-x", model="projects/1/locations/"
                       "us-central1/models/7", sources=["gs://bkt/batch/in/*"],
                       tags={"mldock-role": "batch", "team": "ml"})
    assert job.display_name == "proj-batch-x" and job.model.endswith("/models/7")
    assert job.input_config.instances_format == "jsonl"
    assert list(job.input_config.gcs_source.uris) == ["gs://bkt/batch/in/*"]
    assert job.output_config.predictions_format == "jsonl"
    assert job.output_config.gcs_destination.output_uri_prefix == "gs://bkt/batch/out"
    resources = job.dedicated_resources
    assert resources.machine_spec.machine_type == "n1-highmem-8"
    assert (resources.starting_replica_count, resources.max_replica_count) == (3, 3)
    assert job.service_account == "sa@p-123.iam.gserviceaccount.com"
    assert job.encryption_spec.kms_key_name == KMS
    assert dict(job.labels) == {"mldock-role": "batch", "team": "ml"}
    tuned = job_resource(batch_request(machine_type="e2-standard-4", replicas=2,
                                       predictions_format="csv"),
                         VertexOptions(), name="n", model="m", sources=["s"], tags={})
    assert tuned.dedicated_resources.machine_spec.machine_type == "e2-standard-4"
    assert tuned.dedicated_resources.max_replica_count == 2
    assert tuned.output_config.predictions_format == "csv"
    assert not tuned.service_account and not tuned.encryption_spec.kms_key_name


def test_batch_needs_cloud_storage_locations():
    request = batch_request()
    with pytest.raises(UsageError, match=r"--input data/batch.csv: .*Cloud Storage"):
        check_locations(BatchRequest(**{**request.__dict__, "input_uri": "data/batch.csv"}))
    with pytest.raises(UsageError, match=r"--output s3://b/out"):
        check_locations(BatchRequest(**{**request.__dict__, "output_uri": "s3://b/out"}))
