"""The runtime contract in a real container: what each platform (and its SDK's local mode) sets.

One ``minimal`` project is built once with the real ``mldock`` CLI, then its image is started with
plain ``docker run`` and exactly the environment and mounts each platform uses (see
docs/container.md, "What each platform sets"): no command in a SageMaker training tree (SageMaker
SDK 3.x local mode), two hosts, Vertex AI's ``LocalModel`` variables (no ``AIP_MODE``), a ``gs://``
``AIP_STORAGE_URI`` served from a gcp-storage-emulator on the host, Azure's local endpoint model
folder, a model that cannot load. The project is named ``rc-<8 hex>``; cleanup removes that
repository's tags and this module's containers, nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from mldock.testing.docker import require_image

pytestmark = pytest.mark.docker

MLDOCK = str(Path(sys.executable).parent / "mldock")
NAME = f"rc-{uuid.uuid4().hex[:8]}"
PACKAGE = NAME.replace("-", "_")
LABEL = {"mldock.test": NAME}


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith("MLDOCK_") or k == "MLDOCK_REQUIRE_DOCKER"}


def _mldock(*args: str, cwd: Path) -> str:
    done = subprocess.run([MLDOCK, *args], cwd=cwd, capture_output=True, text=True, timeout=900,
                          env=_clean_env(), check=False)
    assert done.returncode == 0, f"mldock {' '.join(args)}: {done.stderr[-3000:]}"
    return done.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def image(engine, tmp_path_factory):
    """(project folder, tag) of the minimal template built once by ``mldock build``."""
    require_image(engine, "python:3.11-slim")
    root = tmp_path_factory.mktemp("runtime-contract")
    _mldock("init", NAME, "--template", "minimal", "--no-input", cwd=root)
    project = root / NAME
    try:
        tag = _mldock("build", cwd=project).strip().splitlines()[-1]
        assert tag.startswith(f"{NAME}:"), tag
        yield project, tag
    finally:
        for container in engine.containers.list(all=True, filters={"label": f"mldock.test={NAME}"}):
            with contextlib.suppress(Exception):
                container.remove(force=True)
        for img in engine.images.list(name=NAME):
            for t in img.tags:
                if t.rsplit(":", 1)[0] == NAME:
                    with contextlib.suppress(Exception):
                        engine.images.remove(t, noprune=True)


def run_to_end(engine, tag: str, command: list[str] | None = None, *, timeout: int = 300,
               **kwargs) -> tuple[int, str]:
    """Run a container to its end: (exit code, logs). The container is removed after."""
    container = engine.containers.run(tag, command, detach=True, labels=LABEL, **kwargs)
    try:
        code = container.wait(timeout=timeout)["StatusCode"]
        return code, container.logs(stdout=True, stderr=True).decode()
    finally:
        container.remove(force=True)


def sagemaker_tree(root: Path, project: Path, current: str, hosts: list[str]) -> Path:
    """What SageMaker (and its SDKs' local modes) mount at /opt/ml for one training host."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps({"feature": "x", "target": "y"}))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": current, "hosts": hosts, "network_interface_name": "ethwe"}))
    (config / "inputdataconfig.json").write_text(
        json.dumps({"train": {"TrainingInputMode": "File"}}))
    (root / "input" / "data" / "train").mkdir(parents=True)
    shutil.copy(project / "data" / "train.csv", root / "input" / "data" / "train" / "train.csv")
    (root / "model").mkdir()
    (root / "output" / "data").mkdir(parents=True)
    return root


@pytest.fixture(scope="module")
def trained(engine, image, tmp_path_factory):
    """A model trained SageMaker SDK 3.x style: the container started with no command at all."""
    project, tag = image
    tree = sagemaker_tree(tmp_path_factory.mktemp("sm1"), project, "algo-1", ["algo-1"])
    code, logs = run_to_end(engine, tag, None, environment={"TRAINING_JOB_NAME": "rc-job"},
                            volumes={str(tree): {"bind": "/opt/ml", "mode": "rw"}})
    return tree, code, logs


def test_image_has_no_cmd_so_the_environment_decides(engine, image):
    attrs = engine.images.get(image[1]).attrs["Config"]
    assert attrs["Entrypoint"] == ["mldock-runtime"] and not attrs.get("Cmd")


def test_no_command_in_a_sagemaker_training_tree_trains(trained):
    tree, code, logs = trained
    assert code == 0, logs
    assert "on sagemaker" in logs and "rc-job" in logs
    model = json.loads((tree / "model" / "model.json").read_text())
    assert set(model) >= {"slope", "intercept"}
    manifest = json.loads((tree / "model" / "mldock-model.json").read_text())
    assert manifest["platform"] == "sagemaker" and manifest["job_id"] == "rc-job"


def test_two_hosts_only_the_primary_publishes(engine, image, tmp_path):
    """instance_count = 2, as SageMaker local mode lays it out: one /opt/ml per host."""
    project, tag = image
    results = {}
    for host in ("algo-1", "algo-2"):
        tree = sagemaker_tree(tmp_path / host, project, host, ["algo-1", "algo-2"])
        results[host] = (tree, *run_to_end(
            engine, tag, ["train"], environment={"TRAINING_JOB_NAME": "rc-two"},
            volumes={str(tree): {"bind": "/opt/ml", "mode": "rw"}}))
    primary, code1, logs1 = results["algo-1"]
    secondary, code2, logs2 = results["algo-2"]
    assert code1 == 0 and code2 == 0, logs1 + logs2
    assert sorted(p.name for p in (primary / "model").iterdir()) == \
        ["mldock-model.json", "model.json"]
    assert list((secondary / "model").iterdir()) == []
    assert "only the primary host (rank 0) publishes the model" in logs2


def test_explicit_serve_in_a_training_tree_is_refused(engine, image, tmp_path):
    project, tag = image
    tree = sagemaker_tree(tmp_path / "t", project, "algo-1", ["algo-1"])
    code, logs = run_to_end(engine, tag, ["serve"],
                            volumes={str(tree): {"bind": "/opt/ml", "mode": "rw"}})
    assert code == 2 and "must train" in logs and "Traceback" not in logs


class Endpoint:
    """A detached serving container and a small JSON client for it."""

    def __init__(self, engine, tag: str, url: str, **kwargs) -> None:
        self.container = engine.containers.run(tag, detach=True, labels=LABEL, **kwargs)
        self.url = url
        if "{port}" in url:
            self.container.reload()
            port = self.container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
            self.url = url.format(port=port)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def post(self, path: str, data: object) -> tuple[int, object]:
        request = urllib.request.Request(self.url + path, data=json.dumps(data).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_ready(self, path: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            self.container.reload()
            if self.container.status == "exited":
                break
            try:
                last = self.get(path)[0]
                if last == 200:
                    return
            except OSError as exc:
                last = exc
            time.sleep(0.25)
        logs = self.container.logs().decode()
        raise AssertionError(f"{path} not ready (last {last}, {self.container.status}):\n{logs}")

    def close(self) -> str:
        logs = self.container.logs().decode()
        self.container.remove(force=True)
        return logs


@pytest.fixture
def endpoints():
    made: list[Endpoint] = []

    def start(*args, **kwargs) -> Endpoint:
        made.append(Endpoint(*args, **kwargs))
        return made[-1]

    yield start
    for endpoint in made:
        with contextlib.suppress(Exception):
            endpoint.close()


def expected(model_dir: Path, values: list[float]) -> list[float]:
    model = json.loads((model_dir / "model.json").read_text())
    return [model["slope"] * v + model["intercept"] for v in values]


VALUES = [2.5, 4.0, 12.0]


def test_plain_docker_run_still_serves_locally(engine, image, trained, endpoints):
    tree = trained[0]
    ep = endpoints(engine, image[1], "http://127.0.0.1:{port}",
                   ports={"8080/tcp": ("127.0.0.1", None)},
                   environment={"MLDOCK_MODEL_DIR": "/model"},
                   volumes={str(tree / "model"): {"bind": "/model", "mode": "ro"}})
    ep.wait_ready("/ping")
    status, body = ep.post("/invocations", VALUES)
    assert status == 200 and body == pytest.approx(expected(tree / "model", VALUES))
    assert "platform local" in ep.close()


def test_vertex_local_model_environment_serves(engine, image, trained, endpoints):
    """LocalModel.deploy_to_local_endpoint: AIP_HTTP_PORT, routes, AIP_STORAGE_URI a local
    mount, no AIP_MODE, no command."""
    tree = trained[0]
    ep = endpoints(engine, image[1], "http://127.0.0.1:{port}",
                   ports={"8080/tcp": ("127.0.0.1", None)},
                   environment={"AIP_HTTP_PORT": "8080", "AIP_HEALTH_ROUTE": "/health",
                                "AIP_PREDICT_ROUTE": "/predict",
                                "AIP_STORAGE_URI": "/tmp_cpr_local_model"},
                   volumes={str(tree / "model"): {"bind": "/tmp_cpr_local_model", "mode": "ro"}})
    ep.wait_ready("/health")
    status, body = ep.post("/predict", {"instances": VALUES})
    assert status == 200
    assert body["predictions"] == pytest.approx(expected(tree / "model", VALUES))
    assert "platform vertex" in ep.close()


def test_azure_local_endpoint_model_folder_serves(engine, image, trained, endpoints, tmp_path):
    """Azure's local endpoint: AZUREML_MODEL_DIR=…/azureml-models//<name>/<version>, the
    registered folder one level below."""
    tree = trained[0]
    registered = tmp_path / "azureml-models" / "iris" / "1" / "model"
    shutil.copytree(tree / "model", registered)
    ep = endpoints(engine, image[1], "http://127.0.0.1:{port}",
                   ports={"8080/tcp": ("127.0.0.1", None)},
                   environment={"AZUREML_MODEL_DIR": "/var/azureml-app/azureml-models//iris/1"},
                   volumes={str(tmp_path / "azureml-models"):
                            {"bind": "/var/azureml-app/azureml-models", "mode": "ro"}})
    ep.wait_ready("/v2/health/ready")
    status, body = ep.post("/score", VALUES)
    assert status == 200 and body == pytest.approx(expected(tree / "model", VALUES))
    assert "platform azureml" in ep.close()


def test_a_model_that_cannot_load_exits_3(engine, image, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, logs = run_to_end(engine, image[1], None, timeout=120,
                            environment={"MLDOCK_MODEL_DIR": "/model",
                                         "MLDOCK_LOAD_FAILURE_GRACE": "1"},
                            volumes={str(empty): {"bind": "/model", "mode": "ro"}})
    assert code == 3, logs
    assert "exiting with code 3: the model failed to load" in logs


# --- Vertex AI in the cloud: a gs:// AIP_STORAGE_URI, from an emulator on the host ------------

@pytest.fixture
def emulator(gcs_emulator: str) -> str:
    """The harness's in-memory gcp-storage-emulator on the host (``mldock.testing.fixtures``)."""
    return gcs_emulator


def _send(method: str, url: str, body: bytes, content_type: str) -> None:
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": content_type})
    urllib.request.urlopen(request, timeout=10).close()


def test_vertex_gs_storage_uri_downloads_with_the_stdlib(engine, image, trained, emulator,
                                                         endpoints):
    """The image has no google-cloud-storage; the host network lets it reach the emulator."""
    tree = trained[0]
    bucket = f"rc-{uuid.uuid4().hex[:8]}"
    _send("POST", f"{emulator}/storage/v1/b", json.dumps({"name": bucket}).encode(),
          "application/json")
    for path in (tree / "model").iterdir():
        _send("PUT", f"{emulator}/{bucket}/{urllib.parse.quote('models/7/' + path.name)}",
              path.read_bytes(), "application/octet-stream")
    port = _free_port()
    ep = endpoints(engine, image[1], f"http://127.0.0.1:{port}", network_mode="host",
                   environment={"AIP_MODE": "PREDICTION", "AIP_HTTP_PORT": str(port),
                                "AIP_HEALTH_ROUTE": "/hc", "AIP_PREDICT_ROUTE": "/p",
                                "AIP_STORAGE_URI": f"gs://{bucket}/models/7",
                                "STORAGE_EMULATOR_HOST": emulator, "MLDOCK_HOST": "127.0.0.1"})
    ep.wait_ready("/hc")
    status, body = ep.post("/p", {"instances": VALUES})
    assert status == 200
    assert body["predictions"] == pytest.approx(expected(tree / "model", VALUES))
    logs = ep.close()
    assert f"gs://{bucket}/models/7" in logs and "platform vertex" in logs
