"""Vertex AI batch prediction: the job mldock sends, offline; then real jobs on the fake.

The fake runs the batch job for real: it reads the input files from the GCS emulator, starts the
model's serving container, sends it ``{"instances": …}`` requests as Vertex does and writes
``predictions_*.jsonl`` under the output prefix, which the tests read back.
"""

from __future__ import annotations

import json
import uuid

import pytest
from google.api_core import exceptions as google_exceptions
from mldock.errors import UsageError
from mldock.interfaces import BatchRequest
from mldock_gcp.batch import BatchRunner, check_locations, instances_format, job_resource
from mldock_gcp.clients import CredentialChain, VertexClients
from mldock_gcp.config import VertexOptions
from mldock_gcp.modeldata import artifact_uri, storage_client
from trained_model import build_and_train, remove_image

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


# --- real jobs on the fake -----------------------------------------------------------------------


VALUES = [2.5, 4.0, 12.0, -1.5]


@pytest.fixture(scope="module")
def trained(docker_engine, tmp_path_factory):
    """The minimal template built and trained for real; its image removed afterwards."""
    model = build_and_train(tmp_path_factory.mktemp("batch-model"), "gcpbatch")
    yield model
    remove_image(docker_engine, model.image)


@pytest.fixture
def bucket(make_gcs_bucket, gcs_emulator, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    return make_gcs_bucket("mldock-batch")


@pytest.fixture
def runner(vertex_fake):
    options = VertexOptions(project=vertex_fake.project, region="us-central1",
                            api_endpoint=vertex_fake.url, batch_machine_type="n1-highcpu-4",
                            batch_replicas=2, labels={"team": "ml"})
    clients = VertexClients(options, CredentialChain(anonymous=True))
    return BatchRunner(clients, options, project="proj", poll_s=0.05)


def put(bucket: str, name: str, text: str) -> None:
    storage_client_on_emulator().bucket(bucket).blob(name).upload_from_string(text)


def storage_client_on_emulator():
    from mldock_gcp.clients import VertexClients as Clients

    return storage_client(Clients(VertexOptions(project="mldock-test-project")))


def predictions_under(folder: str) -> tuple[list[dict], list[str]]:
    """The ``{"instance", "prediction"}`` rows under ``folder``, and every file's name."""
    bucket, _, prefix = folder[len("gs://"):].partition("/")
    rows, names = [], []
    for blob in storage_client_on_emulator().list_blobs(bucket, prefix=prefix + "/"):
        names.append(blob.name[len(prefix) + 1:])
        if names[-1].startswith("predictions"):
            rows += [json.loads(line) for line in blob.download_as_text().splitlines() if line]
    return rows, names


def run(runner, trained, bucket, source: str, content_type: str, out: str, lines=None):
    uri = artifact_uri(runner.clients, model_uri="", model_dir=str(trained.model_dir),
                       run_id=trained.run_id, staging=f"gs://{bucket}/proj/vertex")
    request = BatchRequest(run_id=trained.run_id, image=trained.image, model_uri="",
                           input_uri=f"gs://{bucket}/{source}", output_uri=f"gs://{bucket}/{out}",
                           content_type=content_type)
    return runner.run(request, image=trained.image, artifact_uri=uri,
                      progress=(lines if lines is not None else []).append), uri


@pytest.mark.docker
def test_jsonl_folder_predicted_and_the_job_read_back(runner, vertex_clients, trained, bucket):
    put(bucket, "in/jsonl/a.jsonl", "".join(json.dumps([x]) + "\n" for x in VALUES[:3]))
    put(bucket, "in/jsonl/b.jsonl", json.dumps({"x": VALUES[3]}) + "\n")
    lines: list[str] = []
    result, uri = run(runner, trained, bucket, "in/jsonl/", "application/jsonlines", "out/j",
                      lines)
    assert (result.status, result.failure_reason) == ("finished", None)
    assert result.output_uri.startswith(f"gs://{bucket}/out/j/prediction-")
    rows, names = predictions_under(result.output_uri)
    assert names == ["predictions_00001.jsonl"]
    got = {json.dumps(row["instance"]): row["prediction"] for row in rows}
    want = trained.predict(VALUES)
    assert got == pytest.approx({json.dumps([x]): y for x, y in zip(VALUES[:3], want[:3],
                                                                     strict=True)}
                                | {json.dumps({"x": VALUES[3]}): want[3]})

    job = vertex_clients.job.get_batch_prediction_job(name=result.job_id)
    assert job.input_config.instances_format == "jsonl"
    assert list(job.input_config.gcs_source.uris) == [f"gs://{bucket}/in/jsonl/*"]
    assert job.output_config.gcs_destination.output_uri_prefix == f"gs://{bucket}/out/j"
    assert job.dedicated_resources.machine_spec.machine_type == "n1-highcpu-4"
    assert job.dedicated_resources.starting_replica_count == 2
    assert dict(job.labels) == {"mldock-project": "proj", "mldock-role": "batch",
                                "mldock-run": trained.run_id, "team": "ml"}
    assert job.display_name.startswith(f"proj-batch-{trained.run_id}-")
    with pytest.raises(google_exceptions.NotFound):  # the job's own model, deleted after it
        vertex_clients.model.get_model(name=job.model)
    assert f"{result.job_id}: SUCCEEDED" in lines
    assert any(line.startswith(f"batch prediction job {result.job_id}: gs://{bucket}/in/jsonl/*"
                               f" -> gs://{bucket}/out/j on 2 x n1-highcpu-4") for line in lines)
    assert uri == f"gs://{bucket}/proj/vertex/models/{trained.run_id}"


@pytest.mark.docker
def test_a_csv_file_and_a_folder_named_without_slash(runner, trained, bucket):
    put(bucket, "in/rows.csv", "x\n" + "".join(f"{x}\n" for x in VALUES))
    result, _ = run(runner, trained, bucket, "in/rows.csv", "text/csv", "out/c")
    assert result.status == "finished"
    rows, _ = predictions_under(result.output_uri)
    assert sorted(row["prediction"] for row in rows) == pytest.approx(
        sorted(trained.predict(VALUES)))
    put(bucket, "in/folder/part.jsonl", json.dumps([1.0]) + "\n")
    folder, _ = run(runner, trained, bucket, "in/folder", "application/jsonlines", "out/f")
    rows, _ = predictions_under(folder.output_uri)
    assert [row["prediction"] for row in rows] == pytest.approx(trained.predict([1.0]))


@pytest.mark.docker
def test_a_failed_job_reports_why_and_removes_its_model(runner, vertex_clients, trained, bucket):
    put(bucket, "in/bad.csv", "x\nnot-a-number\n")
    result, _ = run(runner, trained, bucket, "in/bad.csv", "text/csv", "out/bad")
    assert result.status == "failed"
    assert result.failure_reason and "\n" not in result.failure_reason
    job = vertex_clients.job.get_batch_prediction_job(name=result.job_id)
    assert job.state.name == "JOB_STATE_FAILED"
    assert job.error.message in result.failure_reason
    with pytest.raises(google_exceptions.NotFound):
        vertex_clients.model.get_model(name=job.model)


def test_a_refused_content_type_uploads_nothing(runner, vertex_fake):
    seen = len(vertex_fake.journal)
    with pytest.raises(UsageError, match="JSON Lines or CSV"):
        runner.run(batch_request("image/png", bucket="mldock-none"), image=IMAGE,
                   artifact_uri="gs://mldock-none/m")
    assert vertex_fake.journal[seen:] == []
