"""Vertex AI endpoints: what mldock sends, offline; then real deploys on the fake.

The fake runs the serving container of each deployed model on the Docker engine, answers
``:predict`` and ``:rawPredict`` by forwarding to it, and keeps every model and endpoint so the
tests read each one back, field by field.
"""

from __future__ import annotations

import json

from mldock.interfaces import DeployRequest
from mldock_gcp.config import VertexOptions
from mldock_gcp.serving import (
    Endpoints,
    container_error,
    instances_payload,
    integral,
    model_resource,
)

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
