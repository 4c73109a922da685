"""The image run exactly as SageMaker runs it: plain ``docker run``, no mldock on the host side.

SageMaker: ``docker run IMAGE train`` with ``/opt/ml`` holding ``input/config/hyperparameters.json``
(every value a string) and ``resourceconfig.json``, the model read back from ``/opt/ml/model``; then
``docker run IMAGE serve`` with that model at ``/opt/ml/model``, answering every route of the
contract.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def trained_tree(engine, built_project, built_image, tmp_path_factory):
    tree = tmp_path_factory.mktemp("opt_ml")
    config = tree / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(
        {"n_estimators": "15", "max_depth": "3", "target": "species", "test_size": "0.2",
         "random_state": "0", "sagemaker_program": "ignored.py"}))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}))
    (config / "inputdataconfig.json").write_text(
        json.dumps({"train": {"TrainingInputMode": "File"}}))
    data = tree / "input" / "data" / "train"
    data.mkdir(parents=True)
    shutil.copy(built_project / "data" / "iris.csv", data / "iris.csv")
    image = built_image
    logs = engine.containers.run(image, ["train"], remove=True, stdout=True, stderr=True,
                                 environment={"TRAINING_JOB_NAME": "contract-job"},
                                 volumes={str(tree): {"bind": "/opt/ml", "mode": "rw"}})
    return tree, image, logs.decode()


def test_training_like_sagemaker(trained_tree, package_name):
    tree, _, logs = trained_tree
    assert "on sagemaker" in logs and "contract-job" in logs
    manifest = json.loads((tree / "model" / "mldock-model.json").read_text())
    assert manifest["predictor"] == f"{package_name}.predict:Predictor"
    assert all(len(h) == 64 for h in manifest["files"].values())
    assert not (tree / "output" / "failure").exists()


@pytest.fixture(scope="module")
def endpoint(engine, trained_tree):
    tree, image, _ = trained_tree
    container = engine.containers.run(
        image, ["serve"], detach=True, ports={"8080/tcp": ("127.0.0.1", None)},
        volumes={str(tree / "model"): {"bind": "/opt/ml/model", "mode": "ro"}})
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        yield url
    finally:
        container.remove(force=True)


def call(url: str, path: str, body: bytes | None = None, content_type: str = "application/json",
         accept: str = "application/json", method: str | None = None):
    request = urllib.request.Request(url + path, data=body,
                                     method=method or ("POST" if body else "GET"),
                                     headers={"Content-Type": content_type, "Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read(), answer.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.mark.parametrize("path", ["/ping", "/health", "/v2/health/live", "/v2/health/ready"])
def test_health_routes(endpoint, path):
    assert call(endpoint, path)[0] == 200


@pytest.mark.parametrize("path", ["/invocations", "/score"])
def test_invocations_and_azure_score(endpoint, path):
    status, body, _ = call(endpoint, path, json.dumps({"instances": ROWS}).encode())
    assert status == 200 and json.loads(body) == {"predictions": ["setosa", "virginica"]}
    status, body, _ = call(endpoint, path, b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n", "text/csv")
    assert status == 200 and json.loads(body) == ["setosa", "virginica"]


def test_vertex_predict(endpoint):
    status, body, _ = call(endpoint, "/predict",
                           json.dumps({"instances": ROWS, "parameters": {}}).encode())
    assert status == 200 and json.loads(body)["predictions"] == ["setosa", "virginica"]


def test_open_inference_protocol_v2(endpoint):
    status, body, _ = call(endpoint, "/v2/models/iris")
    assert status == 200 and json.loads(body)["name"]
    tensor = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64",
                          "data": [x for row in ROWS for x in row]}]}
    status, body, _ = call(endpoint, "/v2/models/iris/infer", json.dumps(tensor).encode())
    assert status == 200
    outputs = json.loads(body)["outputs"]
    assert outputs[0]["data"] == ["setosa", "virginica"]


def test_execution_parameters_and_metrics(endpoint):
    status, body, _ = call(endpoint, "/execution-parameters")
    assert status == 200 and {"MaxConcurrentTransforms", "BatchStrategy", "MaxPayloadInMB"} <= set(
        json.loads(body))
    status, body, _ = call(endpoint, "/metrics")
    assert status == 200 and b"# TYPE" in body


@pytest.mark.parametrize(("body", "content_type", "expected"), [
    (b"{not json", "application/json", 400),
    (b"\xff\xfe", "text/csv", 400),
    (b"[[1,2]]", "application/x-unknown", 415),
])
def test_malformed_payloads_are_4xx(endpoint, body, content_type, expected):
    status, answer, _ = call(endpoint, "/invocations", body, content_type)
    assert status == expected and "error" in json.loads(answer)


def test_unknown_route_and_method(endpoint):
    assert call(endpoint, "/nope")[0] == 404
    assert call(endpoint, "/invocations", method="GET")[0] == 405
