"""Real parts for the tests: moto in server mode and a registry, both on 127.0.0.1, per session.

* ``moto_server`` (SageMaker, SageMaker runtime, ECR, S3, CloudWatch Logs, IAM, STS) from this
  virtual environment (the ``test`` extra installs ``moto[server]``), on a free port.
* Debian's ``docker-registry`` behind htpasswd auth for user ``AWS`` with the password moto's
  ECR hands out as token (``<account>-auth-token``): the token → auth → push path runs for real.

Every test runs with dummy keys and with the developer's AWS files and variables hidden: a test
can never reach a real account. Every request the deployer sends is checked against the service
model more strictly than botocore does by itself (patterns, maximum lengths, enums), because moto
accepts almost anything: see :class:`ShapeChecker`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("mldock.testing")

MOTO_SERVER = Path(sys.executable).parent / "moto_server"
ACCOUNT = "123456789012"
REGION = "us-east-1"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/mldock-test-sagemaker"
ECR_TOKEN = f"{ACCOUNT}-auth-token"  # what moto's GetAuthorizationToken encodes after "AWS:"
REGISTRY_BIN = "/usr/bin/docker-registry"
DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}
HIDDEN_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
              "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
              "AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
              "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
              "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- moto -------------------------------------------------------------------------------------


class MotoServer:
    """One ``moto_server`` process; :meth:`stop` ends it by its PID (its own process group)."""

    def __init__(self, log_dir: Path):
        if not MOTO_SERVER.exists():
            pytest.fail(f"{MOTO_SERVER} is missing: install the test extra"
                        " (uv pip install -e 'plugins/aws[test]')", pytrace=False)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"moto-{self.port}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)], stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"moto_server did not start on port {self.port}:\n"
                            f"{self.log.read_text()[-2000:]}", pytrace=False)
            time.sleep(0.1)

    def post(self, path: str, body: bytes = b"", content_type: str = "text/plain") -> None:
        request = urllib.request.Request(f"{self.url}{path}", data=body, method="POST",
                                         headers={"Content-Type": content_type})
        with urllib.request.urlopen(request, timeout=10):
            pass

    def queue_endpoint_results(self, *results: dict[str, str]) -> None:
        """What the next ``invoke_endpoint`` calls answer (moto runs no container)."""
        self.post("/moto-api/static/sagemaker/endpoint-results",
                  json.dumps({"account_id": ACCOUNT, "region": REGION,
                              "results": list(results)}).encode(), "application/json")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def start_moto(tmp_path_factory):
    """``start_moto()`` starts one more moto server; each is stopped when the session ends."""
    started: list[MotoServer] = []

    def start() -> MotoServer:
        started.append(MotoServer(tmp_path_factory.mktemp("moto")))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def moto(start_moto) -> MotoServer:
    """The session's moto server; tests use unique names instead of resetting it."""
    return start_moto()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path_factory):
    """Dummy keys, empty AWS config files: tests never read ~/.aws nor reach a real account."""
    home = tmp_path_factory.mktemp("aws-home")
    for name in ("config", "credentials"):
        (home / name).write_text("")
    for name in HIDDEN_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in DUMMY_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
    return home


def boto(moto: MotoServer, service: str) -> Any:
    """A plain boto3 client on moto, to read back what the deployer created."""
    import boto3

    return boto3.client(service, endpoint_url=moto.url, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def aws(moto):
    """``aws("sagemaker")``: a plain client on moto for reading back."""
    return lambda service: boto(moto, service)


@pytest.fixture(scope="session")
def bucket(moto) -> str:
    name = "mldock-aws-tests"
    boto(moto, "s3").create_bucket(Bucket=name)
    return name


# --- what the deployer sends, checked against the service model -------------------------------


def _python_pattern(pattern: str) -> re.Pattern | None:
    """AWS's Java-style pattern in Python's syntax, or None when it cannot be translated."""
    text = (pattern.replace(r"\p{L}", "A-Za-z\u00c0-\uffff").replace(r"\p{Z}", " ")
            .replace(r"\p{N}", "0-9").replace(r"\p{M}", ""))
    try:
        return re.compile(text, re.DOTALL)
    except re.error:
        return None


class ShapeChecker:
    """Records every call's parameters and checks them against the operation's input shape.

    botocore validates required members, types and minimum lengths before sending; this adds
    what it leaves to the service (maximum lengths and counts, numeric ranges, enums, patterns),
    which moto does not check either.
    """

    def __init__(self):
        self.calls: list[tuple[str, str, dict]] = []
        self.problems: list[str] = []

    def __call__(self, params: dict, model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        kept = {key: value if hasattr(value, "read") else copy.deepcopy(value)  # file bodies
                for key, value in params.items()}
        self.calls.append((service, model.name, kept))
        self._check(model.input_shape, params, f"{service}.{model.name}")

    def sent(self, operation: str) -> list[dict]:
        return [params for _, name, params in self.calls if name == operation]

    def last(self, operation: str) -> dict:
        found = self.sent(operation)
        assert found, f"{operation} was never called; calls: {[c[1] for c in self.calls]}"
        return found[-1]

    def _check(self, shape: Any, value: Any, where: str) -> None:
        if shape is None or value is None:
            return
        meta = shape.metadata
        kind = shape.type_name
        if kind == "structure":
            for name, member in shape.members.items():
                if name in value:
                    self._check(member, value[name], f"{where}.{name}")
            return
        if kind == "list":
            self._bounds(len(value), meta, where, "items")
            for index, item in enumerate(value):
                self._check(shape.member, item, f"{where}[{index}]")
            return
        if kind == "map":
            self._bounds(len(value), meta, where, "entries")
            for key, item in value.items():
                self._check(shape.key, key, f"{where}<key {key!r}>")
                self._check(shape.value, item, f"{where}[{key!r}]")
            return
        if kind == "string":
            self._bounds(len(value), meta, where, "characters")
            enum = getattr(shape, "enum", None)
            if enum and value not in enum:
                self.problems.append(f"{where}: {value!r} is not one of {enum}")
            pattern = meta.get("pattern")
            compiled = _python_pattern(pattern) if pattern else None
            if compiled is not None and not compiled.fullmatch(value):
                self.problems.append(f"{where}: {value!r} does not match {pattern!r}")
            return
        if kind in ("integer", "long", "float", "double") and (
                "min" in meta and value < meta["min"] or "max" in meta and value > meta["max"]):
            self.problems.append(f"{where}: {value} is outside [{meta.get('min')},"
                                     f" {meta.get('max')}]")

    def _bounds(self, size: int, meta: dict, where: str, unit: str) -> None:
        if "min" in meta and size < meta["min"] or "max" in meta and size > meta["max"]:
            self.problems.append(f"{where}: {size} {unit}, allowed {meta.get('min', 0)}"
                                 f"-{meta.get('max', '…')}")


@pytest.fixture
def options(moto, bucket):
    """Deployer options aimed at moto (every service through ``endpoint_url``)."""
    from mldock_aws.config import SageMakerOptions

    return SageMakerOptions(region=REGION, role_arn=ROLE_ARN, endpoint_url=moto.url)


@pytest.fixture
def shapes():
    """The checker; every test that builds a deployer fails on a malformed request."""
    checker = ShapeChecker()
    yield checker
    assert not checker.problems, "requests that SageMaker would reject:\n" + "\n".join(
        checker.problems)


@pytest.fixture
def make_deployer(options, bucket, shapes):
    """``make_deployer(project=…, **option_overrides)``: a deployer on moto whose requests
    ``shapes`` records and checks; polls every 10 ms (moto ends everything at once anyway)."""
    from mldock.errors import MldockError
    from mldock_aws.clients import AwsClients
    from mldock_aws.config import SageMakerOptions
    from mldock_aws.deployer import SageMakerDeployer

    def make(project: str = "proj", storage_uri: str | None = None,
             **overrides: Any) -> SageMakerDeployer:
        opts = (SageMakerOptions.model_validate({**options.model_dump(), **overrides})
                if overrides else options)
        clients = AwsClients(opts)
        try:
            clients.session.events.register("provide-client-params", shapes)
        except MldockError:
            pass  # a session that cannot open (unknown profile): the test wants that error

        return SageMakerDeployer(opts, project=project, clients=clients,
                                 storage_uri=storage_uri or f"s3://{bucket}/{project}",
                                 poll_s=0.01)

    return make


@pytest.fixture
def deployer(make_deployer):
    return make_deployer()


# --- a registry standing in for ECR -------------------------------------------------------------


class Registry:
    """``docker-registry serve`` on 127.0.0.1 with htpasswd basic auth for user ``AWS``."""

    def __init__(self, root: Path):
        from mldock.testing.docker import unavailable

        binary = shutil.which(REGISTRY_BIN)
        htpasswd = shutil.which("htpasswd")
        if not binary or not htpasswd:
            unavailable("docker-registry and htpasswd are needed (apt-get install docker-registry"
                        " apache2-utils): a real registry for the ECR push path")
        self.host = f"127.0.0.1:{free_port()}"
        (root / "data").mkdir(parents=True)
        line = subprocess.run([htpasswd, "-Bbn", "AWS", ECR_TOKEN], capture_output=True,
                              text=True, check=True).stdout.strip()
        (root / "htpasswd").write_text(line + "\n")
        config = {"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
                  "storage": {"filesystem": {"rootdirectory": str(root / "data")},
                              "delete": {"enabled": True}},
                  "http": {"addr": self.host, "secret": uuid.uuid4().hex},
                  "auth": {"htpasswd": {"realm": "mldock-aws-test",
                                        "path": str(root / "htpasswd")}}}
        (root / "config.yml").write_text(json.dumps(config))  # YAML is a superset of JSON
        self.log = root / "registry.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen([binary, "serve", str(root / "config.yml")],
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1).close()
                break
            except urllib.error.HTTPError:  # 401: up, asking for credentials
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail("registry did not start: " + self.log.read_text()[-2000:],
                                pytrace=False)
                time.sleep(0.1)

    def manifest_digest(self, repository: str, reference: str) -> str:
        """The registry's own digest of ``repository:reference`` (as user AWS)."""
        import base64

        request = urllib.request.Request(
            f"http://{self.host}/v2/{repository}/manifests/{reference}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json",
                     "Authorization": "Basic " + base64.b64encode(
                         f"AWS:{ECR_TOKEN}".encode()).decode()})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.headers["Docker-Content-Digest"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    found = Registry(tmp_path_factory.mktemp("registry"))
    yield found
    found.stop()


@pytest.fixture(scope="session")
def engine():
    """A pinged docker client (skip, or fail under MLDOCK_REQUIRE_DOCKER=1, without one)."""
    from mldock.testing.docker import require_docker

    client = require_docker()
    yield client
    client.close()


def remove_tags(client: Any, repository: str, *, keep_parents: bool = True) -> None:
    """Remove every tag of ``repository`` (``docker rmi TAG``; nothing is ever pruned). With
    ``keep_parents`` the untagged parents stay as build cache (big images); without, they go
    with the image as ``docker rmi`` does by default (this suite's own tiny image)."""
    from docker.errors import APIError, ImageNotFound

    for image in client.images.list(name=repository):
        for tag in image.tags:
            if tag.rsplit(":", 1)[0] == repository:
                with contextlib.suppress(ImageNotFound, APIError):
                    client.images.remove(tag, noprune=keep_parents)


@pytest.fixture(scope="session")
def tiny_image(engine, tmp_path_factory):
    """A small local image ``mldock-aws-tiny:<hex>`` (FROM the base image), removed at the end."""
    from mldock.testing.docker import require_image

    base = os.environ.get("MLDOCK_TEST_BASE_IMAGE", "python:3.11-slim")
    require_image(engine, base)
    context = tmp_path_factory.mktemp("tiny-image")
    (context / "Dockerfile").write_text(f"FROM {base}\nLABEL mldock.test=aws\n"
                                        f"RUN echo {uuid.uuid4().hex} > /opt/marker\n")
    tag = f"mldock-aws-tiny:{uuid.uuid4().hex[:12]}"
    engine.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    yield tag
    remove_tags(engine, tag.rsplit(":", 1)[0], keep_parents=False)


@pytest.fixture
def pushed_repos(engine, registry):
    """Append the repository names a test pushes: their local ``<registry>/<repo>:<tag>`` tags
    (the builder tags before pushing) are removed after the test."""
    names: list[str] = []
    yield names
    for name in names:
        remove_tags(engine, f"{registry.host}/{name}", keep_parents=False)


@pytest.fixture(scope="session")
def untag(engine):
    """``untag(repository, keep_parents=True)``: :func:`remove_tags` on the session's engine."""
    return lambda repository, keep_parents=True: remove_tags(engine, repository,
                                                             keep_parents=keep_parents)
