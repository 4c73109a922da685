"""Vertex AI endpoints: what mldock sends, offline; then real deploys on the fake.

The fake runs the serving container of each deployed model on the Docker engine, answers
``:predict`` and ``:rawPredict`` by forwarding to it, and keeps every model and endpoint so the
tests read each one back, field by field.
"""

from __future__ import annotations

import json
import shutil
import uuid
from typing import Any

import pytest
from google.api_core import exceptions as google_exceptions
from google.cloud import aiplatform_v1 as aip
from mldock.errors import MldockError, NotFoundError
from mldock.interfaces import DeployRequest
from mldock_gcp.clients import CredentialChain, VertexClients
from mldock_gcp.config import VertexOptions
from mldock_gcp.modeldata import artifact_uri
from mldock_gcp.models import model_resource, wait_operation
from mldock_gcp.prediction import container_error, instances_payload, integral
from mldock_gcp.serving import Endpoints
from trained_model import TrainedModel, build_and_train, remove_image

IMAGE = "us-central1-docker.pkg.dev/p/mldock/proj@sha256:" + "cd" * 32
KMS = "projects/p/locations/us-central1/keyRings/ring/cryptoKeys/key"


def request(name: str, model_uri: str = "gs://bkt/m", run: str = "run1",
            **options) -> DeployRequest:
    return DeployRequest(name=name, image=IMAGE, model_uri=model_uri, run_id=run,
                         options={"project": "proj", "port": None, **options})


# --- the requests, offline -----------------------------------------------------------------------


def test_the_model_serves_the_image_on_the_runtimes_port_and_routes():
    model = model_resource(name="ep-run1-x", image=IMAGE, artifact_uri="gs://bkt/models/run1",
                           labels={"mldock-run": "run1"}, environment={"MLDOCK_RUN_ID": "run1"},
                           options=VertexOptions(encryption_key=KMS))
    spec = model.container_spec
    assert (spec.image_uri, spec.predict_route, spec.health_route) == (IMAGE, "/predict",
                                                                       "/health")
    assert [p.container_port for p in spec.ports] == [8080]
    assert [(e.name, e.value) for e in spec.env] == [("MLDOCK_RUN_ID", "run1")]
    assert model.artifact_uri == "gs://bkt/models/run1"
    assert dict(model.labels) == {"mldock-run": "run1"}
    assert model.encryption_spec.kms_key_name == KMS
    plain = model_resource(name="n", image=IMAGE, artifact_uri="gs://b/m", labels={},
                           environment={}, options=VertexOptions())
    assert not plain.encryption_spec.kms_key_name


def test_machine_accelerators_and_replicas():
    endpoints = Endpoints(None, VertexOptions(  # type: ignore[arg-type]
        serve_machine_type="n1-standard-8", serve_accelerator_type="NVIDIA_TESLA_T4",
        serve_accelerator_count=2, min_replicas=2, max_replicas=5), project="proj")
    found = endpoints.resources(request("ep"))
    assert found.machine_spec.machine_type == "n1-standard-8"
    assert found.machine_spec.accelerator_type.name == "NVIDIA_TESLA_T4"
    assert found.machine_spec.accelerator_count == 2
    assert (found.min_replica_count, found.max_replica_count) == (2, 5)
    tuned = endpoints.resources(request("ep", machine_type="e2-standard-2", min_replicas=3,
                                        max_replicas=1))
    assert tuned.machine_spec.machine_type == "e2-standard-2"
    assert (tuned.min_replica_count, tuned.max_replica_count) == (3, 3)  # never below min
    plain = Endpoints(None, VertexOptions(), project="p").resources(  # type: ignore[arg-type]
        request("ep"))
    assert (plain.min_replica_count, plain.max_replica_count) == (1, 1)
    assert plain.machine_spec.accelerator_count == 0


def test_only_instances_json_goes_through_predict():
    body = json.dumps({"instances": [[1, 2]], "parameters": {"k": 1}}).encode()
    assert instances_payload(body, "application/json") == {"instances": [[1, 2]],
                                                           "parameters": {"k": 1}}
    assert instances_payload(body, "application/json; charset=utf-8") is not None
    for raw, kind in ((body, "text/csv"), (b"5.1,3.5\n", "application/json"),
                      (b'[[1, 2]]', "application/json"), (b'{"inputs": [[1]]}', "application/json"),
                      (b'{"instances": 3}', "application/json"),
                      (b'{"instances": [], "extra": 1}', "application/json")):
        assert instances_payload(raw, kind) is None, (raw, kind)


def test_numbers_come_back_as_the_runtime_wrote_them():
    assert integral([1.0, 2.5, "a", [3.0, {"x": 4.0}], True, None]) == [1, 2.5, "a", [3, {"x": 4}],
                                                                       True, None]
    assert isinstance(integral(2.0 ** 60), float)  # beyond exact integers: left alone


def test_container_errors_keep_the_runtimes_shape():
    found = container_error(400, 'POST http://127.0.0.1:1/v1/x:predict: {"error": "bad row 2"}')
    assert (found.status, json.loads(found.body)) == (400, {"error": "bad row 2"})
    assert json.loads(container_error(500, "plain text").body) == {"error": "plain text"}
    relayed = json.dumps({"error": json.dumps({"error": "item 0: expected a number"}),
                          "code": 400})
    assert json.loads(container_error(400, relayed).body) == {
        "error": "item 0: expected a number"}


def test_an_operation_still_running_at_the_deadline_is_one_line():
    class Pending:
        operation = type("Op", (), {"name": "projects/p/locations/l/operations/7"})()

        def done(self):
            return False

    with pytest.raises(MldockError) as info:
        wait_operation(Pending(), action="deploy model m to endpoint 'ep'", timeout_s=0.05,
                       poll_s=0.01)
    assert info.value.message == ("cannot deploy model m to endpoint 'ep': still running after"
                                  " 0.05 s (projects/p/locations/l/operations/7)")
    assert "deploy_timeout_s" in (info.value.hint or "")


# --- real deploys on the fake --------------------------------------------------------------------


VALUES = [2.5, 4.0, 12.0]


@pytest.fixture(scope="module")
def trained(docker_engine, tmp_path_factory):
    """The minimal template built and trained for real; its image removed afterwards."""
    model = build_and_train(tmp_path_factory.mktemp("serving-model"), "gcpserve")
    yield model
    remove_image(docker_engine, model.image)


@pytest.fixture
def staging(make_gcs_bucket, gcs_emulator, monkeypatch):
    """A bucket of this test on the emulator, the staging folder's URI."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    return f"gs://{make_gcs_bucket('mldock-serving')}/proj/vertex"


@pytest.fixture
def make_endpoints(vertex_fake):
    """``make_endpoints(**option_overrides)``: endpoints on the fake, polling every 50 ms."""
    def make(**overrides: Any) -> Endpoints:
        options = VertexOptions(project=vertex_fake.project, region="us-central1",
                                api_endpoint=vertex_fake.url, **overrides)
        clients = VertexClients(options, CredentialChain(anonymous=True))
        return Endpoints(clients, options, project="proj", poll_s=0.05)

    return make


@pytest.fixture
def endpoints(make_endpoints):
    return make_endpoints()


def endpoint_name() -> str:
    return f"ep-{uuid.uuid4().hex[:10]}"


def stage(endpoints: Endpoints, trained: TrainedModel, staging: str, run: str) -> str:
    return artifact_uri(endpoints.clients, model_uri="", model_dir=str(trained.model_dir),
                        run_id=run, staging=staging)


def deploy(endpoints, trained, staging, name, run="run1", **options):
    uri = stage(endpoints, trained, staging, run)
    lines: list[str] = []
    found = endpoints.deploy(request(name, uri, run=run, **options), image=trained.image,
                             artifact_uri=uri, progress=lines.append)
    return found, uri, lines


def predict_json(endpoints, name, body) -> tuple[int, Any]:
    answer = endpoints.predict(name, json.dumps(body).encode(), content_type="application/json",
                               accept="application/json")
    return answer.status, json.loads(answer.body)


@pytest.mark.docker
def test_deploy_serves_the_model_and_every_resource_reads_back(
        make_endpoints, vertex_clients, trained, staging):
    endpoints = make_endpoints(serve_machine_type="n1-standard-8", min_replicas=1,
                               max_replicas=3, labels={"team": "ml"},
                               service_account="sa@mldock-fake-project.iam.gserviceaccount.com")
    name = endpoint_name()
    deployment, uri, lines = deploy(endpoints, trained, staging, name)
    assert (deployment.name, deployment.status, deployment.run_id, deployment.image) == (
        name, "ready", "run1", trained.image)
    endpoint = vertex_clients.endpoint.get_endpoint(name=deployment.details["endpoint"])
    assert deployment.url == f"{endpoints.clients.api_endpoint}/v1/{endpoint.name}:predict"
    assert endpoint.display_name == name
    assert dict(endpoint.labels) == {"mldock-endpoint": name, "mldock-project": "proj",
                                     "mldock-role": "serving", "team": "ml"}
    (deployed,) = endpoint.deployed_models
    assert dict(endpoint.traffic_split) == {deployed.id: 100}
    resources = deployed.dedicated_resources
    assert resources.machine_spec.machine_type == "n1-standard-8"
    assert (resources.min_replica_count, resources.max_replica_count) == (1, 3)
    assert deployed.service_account == "sa@mldock-fake-project.iam.gserviceaccount.com"
    model = vertex_clients.model.get_model(name=deployed.model)
    assert model.artifact_uri == uri
    spec = model.container_spec
    assert (spec.image_uri, spec.predict_route, spec.health_route) == (
        trained.image, "/predict", "/health")
    assert [p.container_port for p in spec.ports] == [8080]
    assert {e.name: e.value for e in spec.env} == {"MLDOCK_RUN_ID": "run1"}
    assert dict(model.labels) == {"mldock-endpoint": name, "mldock-project": "proj",
                                  "mldock-role": "serving", "mldock-run": "run1", "team": "ml"}
    assert any(line.startswith(f"creating endpoint {name}") for line in lines)

    want = pytest.approx(trained.predict(VALUES))
    assert predict_json(endpoints, name, {"instances": VALUES}) == (200, {"predictions": want})
    csv = endpoints.predict(name, "".join(f"{x}\n" for x in VALUES).encode(),
                            content_type="text/csv", accept="application/json")
    assert (csv.status, json.loads(csv.body)) == (200, want)  # as /invocations answers CSV
    raw = endpoints.predict(name, json.dumps(VALUES).encode(), content_type="application/json",
                            accept="application/json")  # no "instances": sent as it is
    assert raw.status == 400  # the Vertex route takes JSON as {"instances"} only, and says so
    assert json.loads(raw.body) == {"error": 'the body must be {"instances": [...],'
                                             ' "parameters": {...}}'}
    status, error = predict_json(endpoints, name, {"instances": ["not a number"]})
    assert status == 400 and "expected a number" in error["error"]

    endpoints.undeploy(name)
    assert endpoints.find(name) is None
    assert not [m for m in vertex_clients.model.list_models(parent=vertex_clients.parent)
                if m.labels.get("mldock-endpoint") == name]


@pytest.mark.docker
def test_a_redeploy_is_blue_green(endpoints, vertex_clients, trained, staging):
    """The new model is deployed beside the old one and takes all traffic once it serves; only
    then is the old one undeployed and its model deleted."""
    name = endpoint_name()
    first, _, _ = deploy(endpoints, trained, staging, name, run="run1")
    old = first.details["deployed_model_id"]
    old_model = first.details["model"]
    seen: list[Any] = []

    def watch(line: str) -> None:
        if "serves all traffic" in line:  # the moment the old one is about to go
            seen.append(vertex_clients.endpoint.get_endpoint(name=first.details["endpoint"]))
            seen.append(predict_json(endpoints, name, {"instances": VALUES[:1]}))

    uri = stage(endpoints, trained, staging, "run2")
    second = endpoints.deploy(request(name, uri, run="run2"), image=trained.image,
                              artifact_uri=uri, progress=watch)
    new = second.details["deployed_model_id"]
    assert new != old and second.run_id == "run2"
    during, answered = seen
    assert sorted(d.id for d in during.deployed_models) == sorted([old, new])
    assert dict(during.traffic_split) == {new: 100}
    assert answered == (200, {"predictions": pytest.approx(trained.predict(VALUES[:1]))})
    after = vertex_clients.endpoint.get_endpoint(name=first.details["endpoint"])
    assert [d.id for d in after.deployed_models] == [new]
    with pytest.raises(google_exceptions.NotFound):
        vertex_clients.model.get_model(name=old_model)
    assert endpoints.get(name).run_id == "run2"
    endpoints.undeploy(name)


@pytest.mark.docker
def test_list_and_get_see_only_mldock_endpoints(endpoints, vertex_clients, trained, staging):
    name = endpoint_name()
    deploy(endpoints, trained, staging, name)
    foreign = vertex_clients.endpoint.create_endpoint(
        parent=vertex_clients.parent, endpoint=aip.Endpoint(display_name=endpoint_name())
    ).result(timeout=60)
    listed = endpoints.list()
    assert name in [d.name for d in listed]
    assert foreign.display_name not in [d.name for d in listed]
    assert [d.name for d in listed] == sorted(d.name for d in listed)
    for call in (endpoints.get, endpoints.undeploy):
        with pytest.raises(NotFoundError) as info:
            call(foreign.display_name)
        assert f"no Vertex AI endpoint named {foreign.display_name!r}" in info.value.message
        assert "deploy --list" in (info.value.hint or "")
    with pytest.raises(NotFoundError):
        endpoints.predict(foreign.display_name, b"{}", content_type="application/json",
                          accept="application/json")
    vertex_clients.endpoint.get_endpoint(name=foreign.name)  # never touched
    endpoints.undeploy(name)


@pytest.mark.docker
def test_undeploy_removes_only_what_it_made(endpoints, vertex_clients, trained, staging):
    """``abc`` must not take ``abc-2``'s endpoint or models along."""
    name = endpoint_name()
    neighbour = f"{name}-2"
    deploy(endpoints, trained, staging, name)
    theirs, _, _ = deploy(endpoints, trained, staging, neighbour)
    endpoints.undeploy(name)
    with pytest.raises(NotFoundError):
        endpoints.get(name)
    assert endpoints.get(neighbour).status == "ready"
    vertex_clients.model.get_model(name=theirs.details["model"])
    assert predict_json(endpoints, neighbour, {"instances": VALUES})[0] == 200
    endpoints.undeploy(neighbour)


@pytest.mark.docker
def test_a_failed_deploy_keeps_the_old_model_and_removes_what_it_made(
        vertex_fake, endpoints, vertex_clients, trained, staging):
    name = endpoint_name()
    deploy(endpoints, trained, staging, name)
    vertex_fake.fail_next(r"POST /v1/.*:deployModel", 429, "RESOURCE_EXHAUSTED",
                          "Quota exceeded for aiplatform.googleapis.com/custom_model_serving_cpus")
    uri = stage(endpoints, trained, staging, "run2")
    with pytest.raises(MldockError) as info:
        endpoints.deploy(request(name, uri, run="run2"), image=trained.image, artifact_uri=uri)
    assert "\n" not in info.value.message and "deploy model" in info.value.message
    current = endpoints.get(name)
    assert (current.status, current.run_id) == ("ready", "run1")
    runs = [m.labels.get("mldock-run") for m in vertex_clients.model.list_models(
        parent=vertex_clients.parent) if m.labels.get("mldock-endpoint") == name]
    assert runs == ["run1"]  # the model uploaded for run2 was deleted again
    fresh = endpoint_name()
    vertex_fake.fail_next(r"POST /v1/.*:deployModel", 400, "INVALID_ARGUMENT",
                          "Machine type n1-standard-2 is not supported.")
    with pytest.raises(MldockError, match="is not supported"):
        endpoints.deploy(request(fresh, uri, run="run2"), image=trained.image, artifact_uri=uri)
    assert endpoints.find(fresh) is None  # the endpoint it created is gone too
    endpoints.undeploy(name)


@pytest.mark.docker
def test_a_model_that_cannot_load_fails_the_deploy_in_one_line(
        endpoints, vertex_clients, trained, staging, tmp_path):
    """The operation's error (the container exited) is one line; nothing is left behind."""
    broken = tmp_path / "broken"
    shutil.copytree(trained.model_dir, broken)
    (broken / "model.json").write_text("not json")
    uri = artifact_uri(endpoints.clients, model_uri="", model_dir=str(broken), run_id="bad",
                       staging=staging)
    name = endpoint_name()
    broken_request = DeployRequest(name=name, image=trained.image, model_uri=uri, run_id="bad",
                                   environment={"MLDOCK_LOAD_FAILURE_GRACE": "0"},
                                   options={"project": "proj"})
    with pytest.raises(MldockError) as info:
        endpoints.deploy(broken_request, image=trained.image, artifact_uri=uri)
    message = info.value.message
    assert message.startswith("cannot deploy model projects/") and "\n" not in message
    assert "never became ready" in message
    assert endpoints.find(name) is None
    assert not [m for m in vertex_clients.model.list_models(parent=vertex_clients.parent)
                if m.labels.get("mldock-endpoint") == name]
