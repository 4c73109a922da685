"""The Vertex AI fake itself, driven by the real SDK: what it accepts, refuses, runs and answers.

If these fail, every mldock-gcp test built on the fake means nothing: they check that request
bodies are parsed into the API's own types (an unknown field is a 400), that jobs really run
containers to SUCCEEDED and FAILED with Vertex AI's environment, that operations complete, that
predict reaches a container, and that tokens are verified.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from mldock.testing.processes import http_request
from vertex_fake import VertexFake, error_info

REGION = "us-central1"
DEADLINE_S = 300.0  # a ceiling for a stuck fake, never a speed assertion
TERMINAL = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED")


def unique(prefix: str = "fake-test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def until(read: Any, done: Any) -> Any:
    """Call ``read()`` until ``done(value)``; fails past the ceiling."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"still not done: {value}"
        time.sleep(0.2)


def job_spec(image: str, *, replicas: int = 1, args: list[str] | None = None,
             **env: str) -> dict[str, Any]:
    def pool(count: int) -> dict[str, Any]:
        return {"machine_spec": {"machine_type": "n1-standard-4"}, "replica_count": count,
                "container_spec": {"image_uri": image, "args": args or ["/app/job.py"],
                                   "env": [{"name": k, "value": v} for k, v in env.items()]}}

    pools = [pool(1)] + ([pool(replicas - 1)] if replicas > 1 else [])
    return {"worker_pool_specs": pools,
            "base_output_directory": {"output_uri_prefix": "gs://fake-bucket/out"}}


def run_job(clients: Any, image: str, **kwargs: Any) -> Any:
    from google.cloud import aiplatform_v1

    job = aiplatform_v1.CustomJob(display_name=unique(), labels={"suite": "vertex-fake"},
                                  job_spec=job_spec(image, **kwargs))
    created = clients.job.create_custom_job(parent=clients.parent, custom_job=job)
    assert created.state.name == "JOB_STATE_PENDING"
    return until(lambda: clients.job.get_custom_job(name=created.name),
                 lambda job: job.state.name in TERMINAL)


def job_lines(fake: VertexFake, job: Any, prefix: str) -> list[str]:
    job_id = job.name.rsplit("/", 1)[-1]
    return [entry["textPayload"][len(prefix):] for entry in fake.log_entries()
            if entry["resource"]["labels"]["job_id"] == job_id
            and entry["textPayload"].startswith(prefix)]


# --- requests the service would refuse ---------------------------------------------------------


def post(fake: VertexFake, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    status, _, answer = http_request("POST", fake.url + path, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    return status, json.loads(answer)


def test_an_unknown_field_is_rejected_with_googles_error_shape(vertex_fake):
    status, answer = post(vertex_fake, f"/v1/projects/{vertex_fake.project}/locations/{REGION}"
                          "/customJobs", {"displayName": "x", "jobSpek": {}})
    assert status == 400
    assert answer["error"]["status"] == "INVALID_ARGUMENT"
    assert answer["error"]["code"] == 400
    assert "jobSpek" in answer["error"]["message"]
    assert not vertex_fake.list("customJobs", f"projects/{vertex_fake.project}/locations/"
                                f"{REGION}") or all(j.display_name != "x" for j in
                                                    vertex_fake.list("customJobs"))


@pytest.mark.parametrize(("change", "field"), [
    ({"display_name": ""}, "display_name"),
    ({"display_name": "x" * 129}, "display_name"),
    ({"labels": {"Bad": "x"}}, "labels"),
    ({"job_spec": {"worker_pool_specs": []}}, "worker_pool_specs"),
    ({"job_spec": {"worker_pool_specs": [{"replica_count": 1, "container_spec": {
        "image_uri": "img:1"}}]}}, "machine_type"),
    ({"job_spec": {"worker_pool_specs": [{"replica_count": 2, "machine_spec": {
        "machine_type": "n1-standard-4"}, "container_spec": {"image_uri": "img:1"}}]}},
     "replica_count"),
    ({"job_spec": {"worker_pool_specs": [{"replica_count": 1, "machine_spec": {
        "machine_type": "n1-standard-4"}}]}}, "image_uri"),
])
def test_what_the_service_refuses_is_a_400_naming_the_field(vertex_clients, change, field):
    from google.api_core import exceptions
    from google.cloud import aiplatform_v1

    body = {"display_name": unique(), "job_spec": job_spec("img:1"), **change}
    with pytest.raises(exceptions.BadRequest, match=field):
        vertex_clients.job.create_custom_job(parent=vertex_clients.parent,
                                             custom_job=aiplatform_v1.CustomJob(body))


def test_another_project_is_permission_denied_and_a_missing_job_not_found(vertex_clients):
    from google.api_core import exceptions

    with pytest.raises(exceptions.Forbidden) as denied:
        list(vertex_clients.job.list_custom_jobs(parent=f"projects/someone-else/locations/"
                                                        f"{REGION}"))
    assert denied.value.reason == "IAM_PERMISSION_DENIED"
    with pytest.raises(exceptions.NotFound):
        vertex_clients.job.get_custom_job(name=f"{vertex_clients.parent}/customJobs/42")


def test_fail_next_answers_the_injected_error_once(vertex_fake, vertex_clients):
    from google.api_core import exceptions

    vertex_fake.fail_next(r"GET .*/customJobs$", 429, "RESOURCE_EXHAUSTED", "Quota exceeded",
                          [error_info("RATE_LIMIT_EXCEEDED", "aiplatform.googleapis.com",
                                      quota_metric="aiplatform.googleapis.com/custom_jobs")])
    with pytest.raises(exceptions.TooManyRequests) as raised:
        list(vertex_clients.job.list_custom_jobs(parent=vertex_clients.parent))
    assert raised.value.reason == "RATE_LIMIT_EXCEEDED"
    list(vertex_clients.job.list_custom_jobs(parent=vertex_clients.parent))  # used once


# --- custom jobs run containers ----------------------------------------------------------------


@pytest.mark.docker
def test_a_job_runs_its_container_to_succeeded_with_vertex_environment(
        vertex_fake, vertex_clients, vertex_test_image):
    job = run_job(vertex_clients, vertex_test_image, args=["/app/job.py", "--alpha=1"],
                  EXTRA="yes")
    assert job.state.name == "JOB_STATE_SUCCEEDED", job.error
    assert job.name.startswith(f"projects/{vertex_fake.project_number}/locations/{REGION}/")
    assert job.start_time and job.end_time >= job.start_time
    env = json.loads(job_lines(vertex_fake, job, "ENV ")[0])
    assert env["CLOUD_ML_JOB_ID"] == job.name.rsplit("/", 1)[-1]
    assert env["AIP_MODEL_DIR"] == "gs://fake-bucket/out/model/"
    assert env["AIP_CHECKPOINT_DIR"] == "gs://fake-bucket/out/checkpoints/"
    assert env["EXTRA"] == "yes"
    assert env["STORAGE_EMULATOR_HOST"] == vertex_fake.storage_emulator
    spec = json.loads(env["CLUSTER_SPEC"])
    assert spec["task"] == {"type": "workerpool0", "index": 0, "trial": ""}
    assert len(spec["cluster"]["workerpool0"]) == 1
    assert json.loads(job_lines(vertex_fake, job, "ARGS ")[0]) == ["--alpha=1"]
    assert vertex_fake.custom_job(job.name).state.name == "JOB_STATE_SUCCEEDED"


@pytest.mark.docker
def test_a_failing_replica_fails_the_job_with_its_last_error_line(vertex_fake, vertex_clients,
                                                                  vertex_test_image):
    job = run_job(vertex_clients, vertex_test_image, EXIT_CODE="3",
                  FAIL_MESSAGE="ValueError: no data")
    assert job.state.name == "JOB_STATE_FAILED"
    assert job.error.code == 3
    assert "The replica workerpool0-0 exited with a non-zero status of 3" in job.error.message
    assert "ValueError: no data" in job.error.message
    errors = [e for e in vertex_fake.log_entries() if e["severity"] == "ERROR"
              and e["resource"]["labels"]["job_id"] == job.name.rsplit("/", 1)[-1]]
    assert [e["textPayload"] for e in errors] == ["ValueError: no data"]


@pytest.mark.docker
def test_two_replicas_share_one_cluster_spec_with_their_own_ports(vertex_fake, vertex_clients,
                                                                  vertex_test_image):
    job = run_job(vertex_clients, vertex_test_image, replicas=2)
    assert job.state.name == "JOB_STATE_SUCCEEDED", job.error
    specs = [json.loads(json.loads(line)["CLUSTER_SPEC"])
             for line in job_lines(vertex_fake, job, "ENV ")]
    assert sorted((s["task"]["type"], s["task"]["index"]) for s in specs) == [
        ("workerpool0", 0), ("workerpool1", 0)]
    cluster = specs[0]["cluster"]
    assert all(s["cluster"] == cluster for s in specs)
    addresses = cluster["workerpool0"] + cluster["workerpool1"]
    assert len(set(addresses)) == 2 and all(a.startswith("127.0.0.1:") for a in addresses)


@pytest.mark.docker
def test_cancel_stops_the_containers_and_ends_cancelled(vertex_fake, vertex_clients,
                                                        vertex_test_image, docker_engine):
    from google.cloud import aiplatform_v1

    job = vertex_clients.job.create_custom_job(
        parent=vertex_clients.parent, custom_job=aiplatform_v1.CustomJob(
            display_name=unique(), job_spec=job_spec(vertex_test_image, SLEEP_S="600")))
    until(lambda: vertex_clients.job.get_custom_job(name=job.name),
          lambda found: found.state.name == "JOB_STATE_RUNNING")
    vertex_clients.job.cancel_custom_job(name=job.name)
    ended = until(lambda: vertex_clients.job.get_custom_job(name=job.name),
                  lambda found: found.state.name in TERMINAL)
    assert ended.state.name == "JOB_STATE_CANCELLED"
    left = docker_engine.containers.list(all=True, filters={
        "label": f"mldock.test.vertex-job={job.name.rsplit('/', 1)[-1]}"})
    assert left == []


@pytest.mark.docker
def test_cloud_logging_lists_a_jobs_lines_by_filter_and_pages(vertex_fake, vertex_clients,
                                                              vertex_test_image):
    job = run_job(vertex_clients, vertex_test_image)
    job_id = job.name.rsplit("/", 1)[-1]
    query = {"resourceNames": [f"projects/{vertex_fake.project}"], "pageSize": 2,
             "filter": f'resource.type="ml_job" AND resource.labels.job_id="{job_id}"'}
    status, first = post(vertex_fake, "/v2/entries:list", query)
    assert status == 200 and len(first["entries"]) == 2 and first["nextPageToken"]
    status, rest = post(vertex_fake, "/v2/entries:list",
                        {**query, "pageToken": first["nextPageToken"]})
    texts = [e["textPayload"] for e in first["entries"] + rest["entries"]]
    assert texts[1] == "ARGS []"
    assert any(text.startswith("mldock-metric ") for text in texts)
    stamp = first["entries"][-1]["timestamp"]
    later = {**query, "filter": query["filter"] + f' AND timestamp>"{stamp}"'}
    assert len(post(vertex_fake, "/v2/entries:list", later)[1]["entries"]) == len(texts) - 2


# --- models, endpoints, prediction, batch ------------------------------------------------------


def upload_model(clients: Any, image: str, artifact_uri: str = "") -> Any:
    from google.cloud import aiplatform_v1

    model = aiplatform_v1.Model(
        display_name=unique("model"), artifact_uri=artifact_uri, labels={"suite": "fake"},
        container_spec={"image_uri": image, "command": ["python3", "-u", "/app/serve.py"],
                        "predict_route": "/predict", "health_route": "/health",
                        "ports": [{"container_port": 8080}]})
    operation = clients.model.upload_model(parent=clients.parent, model=model)
    return clients.model.get_model(name=operation.result(timeout=DEADLINE_S).model)


def test_an_upload_is_an_operation_the_client_polls_to_its_response(vertex_fake,
                                                                   vertex_clients):
    model = upload_model(vertex_clients, "127.0.0.1:5000/some/image:1", "gs://fake-bucket/models/m")
    assert model.version_id == "1"
    assert vertex_fake.model(model.name).artifact_uri == "gs://fake-bucket/models/m"
    polls = vertex_fake.requests_to(r"^GET /(v1|ui)/projects/.*/operations/")
    assert polls, "the operation was done at once: the client never polled"


@pytest.mark.docker
def test_deploy_predict_and_undeploy_run_the_serving_container(vertex_fake, vertex_clients,
                                                               vertex_test_image):
    from google.api_core import exceptions
    from google.cloud import aiplatform_v1

    model = upload_model(vertex_clients, vertex_test_image, "gs://fake-bucket/models/m")
    endpoint = vertex_clients.endpoint.create_endpoint(
        parent=vertex_clients.parent, endpoint=aiplatform_v1.Endpoint(
            display_name=unique("endpoint"))).result(timeout=DEADLINE_S)
    deployed = vertex_clients.endpoint.deploy_model(
        endpoint=endpoint.name, traffic_split={"0": 100}, deployed_model={
            "model": model.name, "dedicated_resources": {
                "machine_spec": {"machine_type": "n1-standard-2"}, "min_replica_count": 1}},
    ).result(timeout=DEADLINE_S).deployed_model
    assert dict(vertex_fake.endpoint(endpoint.name).traffic_split) == {deployed.id: 100}

    answer = vertex_clients.prediction.predict(endpoint=endpoint.name,
                                               instances=[[1, 2], [3, 4]])
    assert answer.deployed_model_id == deployed.id
    first = dict(answer.predictions[0])
    assert list(first["echo"]) == [1, 2]
    assert first["deployed"] == deployed.id and first["mode"] == "PREDICTION"

    from google.api import httpbody_pb2

    raw = vertex_clients.prediction.raw_predict(endpoint=endpoint.name, http_body=httpbody_pb2
                                                .HttpBody(content_type="application/json",
                                                          data=b'{"x": 1}'))
    assert json.loads(raw.data) == {"raw": {"x": 1}, "storage": "gs://fake-bucket/models/m"}

    with pytest.raises(exceptions.BadRequest, match="traffic"):
        vertex_clients.endpoint.update_endpoint(
            endpoint={"name": endpoint.name, "traffic_split": {deployed.id: 50}},
            update_mask={"paths": ["traffic_split"]})
    with pytest.raises(exceptions.BadRequest, match="deployed"):
        vertex_clients.endpoint.delete_endpoint(name=endpoint.name)
    vertex_clients.endpoint.undeploy_model(endpoint=endpoint.name,
                                           deployed_model_id=deployed.id).result(DEADLINE_S)
    assert not vertex_fake.endpoint(endpoint.name).deployed_models
    vertex_clients.endpoint.delete_endpoint(name=endpoint.name).result(timeout=DEADLINE_S)
    vertex_clients.model.delete_model(name=model.name).result(timeout=DEADLINE_S)


@pytest.mark.docker
def test_a_container_that_never_gets_healthy_fails_the_deployment(vertex_fake, vertex_clients,
                                                                  vertex_test_image):
    from google.api_core import exceptions
    from google.cloud import aiplatform_v1

    model = vertex_clients.model.upload_model(parent=vertex_clients.parent, model=aiplatform_v1
                                              .Model(display_name=unique("model"),
                                                     container_spec={
                                                         "image_uri": vertex_test_image,
                                                         "args": ["/app/job.py"]})
                                              ).result(timeout=DEADLINE_S)
    endpoint = vertex_clients.endpoint.create_endpoint(
        parent=vertex_clients.parent, endpoint={"display_name": unique("endpoint")}
    ).result(timeout=DEADLINE_S)
    operation = vertex_clients.endpoint.deploy_model(endpoint=endpoint.name, deployed_model={
        "model": model.model, "dedicated_resources": {
            "machine_spec": {"machine_type": "n1-standard-2"}, "min_replica_count": 1}})
    with pytest.raises(exceptions.GoogleAPICallError, match="never became ready"):
        operation.result(timeout=DEADLINE_S)
    assert not vertex_fake.endpoint(endpoint.name).deployed_models


@pytest.mark.docker
def test_a_batch_job_writes_predictions_next_to_its_inputs(vertex_fake, vertex_clients,
                                                           vertex_test_image, make_gcs_bucket):
    from google.cloud import aiplatform_v1
    from vertex_fake import gcs

    bucket = make_gcs_bucket()
    storage = gcs.client(vertex_fake)
    gcs.write(storage, f"gs://{bucket}/in/part-1.jsonl", b"[1, 2]\n[3, 4]\n[5, 6]\n",
              "application/jsonl")
    model = upload_model(vertex_clients, vertex_test_image)
    job = vertex_clients.job.create_batch_prediction_job(
        parent=vertex_clients.parent, batch_prediction_job=aiplatform_v1.BatchPredictionJob(
            display_name=unique("batch"), model=model.name,
            input_config={"instances_format": "jsonl",
                          "gcs_source": {"uris": [f"gs://{bucket}/in/*.jsonl"]}},
            output_config={"predictions_format": "jsonl",
                           "gcs_destination": {"output_uri_prefix": f"gs://{bucket}/out"}},
            dedicated_resources={"machine_spec": {"machine_type": "n1-standard-2"},
                                 "starting_replica_count": 1},
            manual_batch_tuning_parameters={"batch_size": 2}))
    done = until(lambda: vertex_clients.job.get_batch_prediction_job(name=job.name),
                 lambda found: found.state.name in TERMINAL)
    assert done.state.name == "JOB_STATE_SUCCEEDED", done.error
    folder = done.output_info.gcs_output_directory
    assert folder.startswith(f"gs://{bucket}/out/prediction-{model.display_name}-")
    lines = gcs.read_matching(storage, f"{folder}/predictions_00001.jsonl")[0][1].splitlines()
    rows = [json.loads(line) for line in lines]
    assert [row["instance"] for row in rows] == [[1, 2], [3, 4], [5, 6]]
    assert rows[2]["prediction"]["echo"] == [5, 6]
    assert done.completion_stats.successful_count == 3


# --- credentials -------------------------------------------------------------------------------


def test_a_service_account_key_gets_the_fakes_token_through_google_auth(
        vertex_fake, gcp_service_account):
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    credentials = service_account.Credentials.from_service_account_file(
        str(gcp_service_account.path), scopes=["https://www.googleapis.com/auth/cloud-platform"])
    credentials.refresh(Request())
    assert credentials.token == vertex_fake.access_token
    assert vertex_fake.token_grants[-1]["iss"] == gcp_service_account.email


def test_a_key_the_fake_does_not_trust_is_refused(vertex_fake, gcp_service_account, tmp_path):
    from google.auth import exceptions
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account
    from vertex_fake.tokens import write_service_account

    other = VertexFake()  # never started: its trusted keys are not the served fake's
    other.start()
    try:
        info = write_service_account(other, tmp_path / "other.json", vertex_fake.project)
    finally:
        other.stop()
    info["token_uri"] = f"{vertex_fake.url}/token"
    credentials = service_account.Credentials.from_service_account_info(
        info, scopes=["https://www.googleapis.com/auth/cloud-platform"])
    with pytest.raises(exceptions.RefreshError, match="invalid_grant"):
        credentials.refresh(Request())


def test_require_auth_refuses_anonymous_and_accepts_the_issued_token(vertex_fake,
                                                                      vertex_clients):
    vertex_fake.require_auth = True
    status, _, answer = http_request("GET", f"{vertex_fake.url}/v1/{vertex_clients.parent}/"
                                     "customJobs")
    assert status == 401
    assert json.loads(answer)["error"]["status"] == "UNAUTHENTICATED"
    status, _, _ = http_request("GET", f"{vertex_fake.url}/v1/{vertex_clients.parent}/"
                                "customJobs", headers={
                                    "Authorization": f"Bearer {vertex_fake.access_token}"})
    assert status == 200
    status, _, _ = http_request("GET", f"{vertex_fake.url}/v1/{vertex_clients.parent}/"
                                "customJobs", headers={"Authorization": "Bearer forged"})
    assert status == 401


# --- the high-level SDK ------------------------------------------------------------------------


@pytest.mark.docker
def test_the_high_level_custom_job_runs_on_the_fake_with_a_service_account(
        vertex_fake, vertex_test_image, gcp_service_account, monkeypatch):
    from google.cloud import aiplatform

    monkeypatch.setenv(*next(iter(gcp_service_account.env.items())))
    vertex_fake.require_auth = True  # every call must carry the service account's token
    # a fresh global config for this test only: aiplatform.init is process-wide
    monkeypatch.setattr(aiplatform.initializer, "global_config",
                        aiplatform.initializer._Config())
    aiplatform.initializer.global_config.init(project=vertex_fake.project, location=REGION,
                    api_endpoint=vertex_fake.url, api_transport="rest")
    job = aiplatform.CustomJob(display_name=unique("sdk"), worker_pool_specs=[{
        "machine_spec": {"machine_type": "n1-standard-4"}, "replica_count": 1,
        "container_spec": {"image_uri": vertex_test_image, "args": ["/app/job.py"]}}],
        base_output_dir="gs://fake-bucket/sdk", staging_bucket="gs://fake-bucket/staging",
        labels={"suite": "fake"})
    job.run(sync=True)
    assert job.state.name == "JOB_STATE_SUCCEEDED"
    assert vertex_fake.custom_job(job.resource_name).labels["suite"] == "fake"
