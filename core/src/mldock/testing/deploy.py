"""Conformance tests for :class:`mldock.interfaces.Deployer` backends (need a Docker engine).

Subclass :class:`DeployerContract`, set ``record`` and give a ``deployer`` fixture built through
the record's factory. By default the tests deploy a tiny echo image built here ``FROM``
:attr:`DeployerContract.base_image`: it answers the health routes with 200 and every POST with
``{"echo": <the JSON body>}``; ``train`` writes ``model.txt`` into ``$MLDOCK_MODEL_DIR`` (default
``/opt/ml/model``). Cloud deployers override ``serving_image`` (a pushed image), ``model_uri``,
:meth:`deploy_request` and :meth:`training_job`::

    class TestMyDeployer(DeployerContract):
        record = registered_record("deployer", "mydeployer")

        @pytest.fixture
        def deployer(self, tmp_path):
            return self.record.build(FactoryContext(project_dir=tmp_path))
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mldock.errors import NotFoundError
from mldock.interfaces import Deployer, Deployment, DeployRequest, Prediction, TrainingJob
from mldock.runtime.names import MANIFEST_NAME
from mldock.testing._common import Capability, ContractBase, require_capability
from mldock.testing.docker import require_docker, require_image

ECHO_SERVER = '''\
import json, os, signal, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(200, {"status": "ok"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            self._send(200, {"echo": json.loads(body or b"null")})
        except ValueError:
            self._send(400, {"error": "body is not JSON"})

    def log_message(self, *args):
        pass

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
port = int(os.environ.get("MLDOCK_PORT") or os.environ.get("SAGEMAKER_BIND_TO_PORT")
           or os.environ.get("AIP_HTTP_PORT") or 8080)
ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
'''

ENTRYPOINT = '''\
#!/bin/sh
case "$1" in
  train)
    dir="${MLDOCK_MODEL_DIR:-/opt/ml/model}"
    mkdir -p "$dir" && echo trained > "$dir/model.txt"
    [ -n "$MLDOCK_CONTRACT_FAIL" ] && { echo "failing on purpose" >&2; exit 3; }
    exit 0 ;;
  *) exec python3 /opt/echo/server.py ;;
esac
'''


@pytest.mark.docker
class DeployerContract(ContractBase):
    """What every deployer promises: the MLflow-like endpoint cycle, and NotFoundError for names
    it does not know.

    Capability flags, from the record: ``supports_serving`` (``serving``), ``supports_training``
    (``training``).
    """

    concern = "deployer"
    supports_serving = Capability("serving")
    supports_training = Capability("training")
    base_image = os.environ.get("MLDOCK_TEST_BASE_IMAGE", "python:3.11-slim")

    # --- what a subclass provides or overrides ----------------------------------------------------
    @pytest.fixture(autouse=True)
    def _docker_engine(self) -> None:
        """Every test needs the engine (the echo image is built with it): skip/fail without one."""
        require_docker().close()

    @pytest.fixture
    def deployer(self) -> Deployer:
        """The deployer under test. Override this fixture in your subclass."""
        raise NotImplementedError(f"{type(self).__name__} must define a `deployer` fixture")

    @pytest.fixture(scope="class")
    @classmethod
    def serving_image(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        """The tiny echo image, built once per test class and removed afterwards."""
        client = require_docker()
        require_image(client, cls.base_image)
        context = tmp_path_factory.mktemp("echo-image")
        (context / "server.py").write_text(ECHO_SERVER)
        (context / "entrypoint.sh").write_text(ENTRYPOINT)
        (context / "Dockerfile").write_text(
            f"FROM {cls.base_image}\nCOPY server.py /opt/echo/server.py\n"
            "COPY entrypoint.sh /usr/local/bin/mldock-runtime\n"
            "RUN chmod 755 /usr/local/bin/mldock-runtime\nEXPOSE 8080\n"
            'ENTRYPOINT ["mldock-runtime"]\nCMD ["serve"]\n')
        tag = f"mldock-contract-echo:{uuid.uuid4().hex[:12]}"
        client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
        yield tag
        with contextlib.suppress(Exception):  # best-effort cleanup
            client.images.remove(tag, force=True)
        client.close()

    @pytest.fixture
    def model_uri(self, tmp_path: Path) -> str:
        """A trained model folder: one file and its ``mldock-model.json`` manifest."""
        import hashlib
        import time

        model = tmp_path / "model"
        model.mkdir()
        (model / "model.txt").write_text("a model")
        manifest = {"format": 1, "predictor": "echo:Predictor", "run_id": "contract-run",
                    "created_at": time.time(),
                    "files": {"model.txt": hashlib.sha256(b"a model").hexdigest()}}
        (model / MANIFEST_NAME).write_text(json.dumps(manifest))
        return str(model)

    def deploy_request(self, name: str, image: str, model_uri: str) -> DeployRequest:
        """The request the tests deploy; override to add target options (instance type, …)."""
        return DeployRequest(name=name, image=image, model_uri=model_uri, run_id="contract-run")

    def training_job(self, image: str, output_dir: Path, environment: dict[str, str]
                     ) -> TrainingJob:
        """The job the training tests run; override to add target options."""
        return TrainingJob(run_id=f"contract-{uuid.uuid4().hex[:8]}", image=image,
                           output_uri=str(output_dir), environment=environment)

    def check_prediction(self, payload: Any, prediction: Prediction) -> None:
        """Assert ``prediction`` answers ``payload``; the default expects the echo image."""
        assert prediction.status == 200, prediction
        assert json.loads(prediction.body) == {"echo": payload}

    @pytest.fixture
    def endpoint(self, deployer: Deployer) -> Iterator[str]:
        """A unique endpoint name, undeployed after the test whatever happened."""
        name = f"mldock-contract-{uuid.uuid4().hex[:8]}"
        yield name
        with contextlib.suppress(NotFoundError):  # the test may have undeployed it already
            deployer.undeploy(name)

    def _deploy(self, deployer: Deployer, name: str, image: str, model_uri: str) -> Deployment:
        require_capability(self, "supports_serving")
        return deployer.deploy(self.deploy_request(name, image, model_uri))

    # --- serving --------------------------------------------------------------------------------
    def test_deploy_get_and_list(self, deployer: Deployer, endpoint: str, serving_image: str,
                                 model_uri: str) -> None:
        """A deployed endpoint is returned ready, then found by get() and in the sorted list().

        Usually fails when deploy() returns before the container answers, or list() includes
        containers this deployer does not manage.
        """
        deployment = self._deploy(deployer, endpoint, serving_image, model_uri)
        assert deployment.name == endpoint and deployment.url
        assert deployer.get(endpoint).name == endpoint
        names = [d.name for d in deployer.list()]
        assert endpoint in names and names == sorted(names)

    def test_predict_roundtrip(self, deployer: Deployer, endpoint: str, serving_image: str,
                               model_uri: str) -> None:
        """predict() sends the body to the endpoint and returns its answer and content type.

        Usually fails when the body is re-encoded, or the content type header is not sent.
        """
        self._deploy(deployer, endpoint, serving_image, model_uri)
        payload = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
        prediction = deployer.predict(endpoint, json.dumps(payload).encode())
        assert prediction.content_type.startswith("application/json")
        self.check_prediction(payload, prediction)

    def test_redeploy_updates_in_place(self, deployer: Deployer, endpoint: str,
                                       serving_image: str, model_uri: str) -> None:
        """Deploying an existing name again updates it: still one endpoint, still answering.

        Usually fails with a name conflict (container or endpoint name already in use).
        """
        self._deploy(deployer, endpoint, serving_image, model_uri)
        self._deploy(deployer, endpoint, serving_image, model_uri)
        assert [d.name for d in deployer.list()].count(endpoint) == 1
        self.check_prediction([1], deployer.predict(endpoint, b"[1]"))

    def test_undeploy_removes_endpoint(self, deployer: Deployer, endpoint: str,
                                       serving_image: str, model_uri: str) -> None:
        """After undeploy(), get() raises NotFoundError and list() no longer shows the name.

        Usually fails when the container is stopped but not removed.
        """
        self._deploy(deployer, endpoint, serving_image, model_uri)
        deployer.undeploy(endpoint)
        with pytest.raises(NotFoundError):
            deployer.get(endpoint)
        assert endpoint not in [d.name for d in deployer.list()]

    def test_unknown_name_raises_not_found(self, deployer: Deployer) -> None:
        """undeploy() and get() of a name that was never deployed raise NotFoundError naming it.

        Usually fails when the SDK's NotFound (docker.errors.NotFound, botocore ClientError) leaks.
        """
        require_capability(self, "supports_serving")
        name = f"mldock-contract-missing-{uuid.uuid4().hex[:8]}"
        with pytest.raises(NotFoundError, match=name):
            deployer.undeploy(name)
        with pytest.raises(NotFoundError, match=name):
            deployer.get(name)

    # --- training -------------------------------------------------------------------------------
    def test_training_job_succeeds(self, deployer: Deployer, serving_image: str,
                                   tmp_path: Path) -> None:
        """A training job whose container exits 0 ends ``finished`` with a model URI.

        Usually fails when the exit code is not read, or the model folder is not collected.
        """
        require_capability(self, "supports_training")
        job = self.training_job(serving_image, tmp_path / "output", {})
        result = deployer.train(job)
        assert (result.run_id, result.status) == (job.run_id, "finished"), result
        assert result.model_uri

    def test_training_failure_is_reported(self, deployer: Deployer, serving_image: str,
                                          tmp_path: Path) -> None:
        """A training job whose container exits non-zero ends ``failed`` with a reason.

        Usually fails when a failed job is reported as finished (a real bug of earlier tools).
        """
        require_capability(self, "supports_training")
        job = self.training_job(serving_image, tmp_path / "output", {"MLDOCK_CONTRACT_FAIL": "1"})
        result = deployer.train(job)
        assert result.status == "failed" and result.failure_reason, result
