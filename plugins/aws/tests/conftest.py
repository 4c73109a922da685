"""Real parts for the tests, from mldock's test harness (``mldock.testing.fixtures``), per session.

* ``moto_server`` (SageMaker, SageMaker runtime, ECR, S3, CloudWatch Logs, IAM, STS) on
  127.0.0.1. This suite shares it between tests instead of resetting it (the CLI tests keep one
  built project across a module): tests use unique names.
* Debian's ``docker-registry`` behind htpasswd auth for user ``AWS`` with the password moto's
  ECR hands out as token (``<account>-auth-token``): the token → auth → push path runs for real.

Every test runs with dummy keys and with the developer's AWS files and variables hidden
(``aws_sandbox``): a test can never reach a real account. Every request the deployer sends is
checked against the service model more strictly than botocore does by itself (patterns, maximum
lengths, enums), because moto accepts almost anything: see :class:`ShapeChecker`.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import uuid
from typing import Any

import pytest
from mldock.testing.emulators import MotoServer

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/mldock-test-sagemaker"
ECR_TOKEN = f"{ACCOUNT}-auth-token"  # what moto's GetAuthorizationToken encodes after "AWS:"


@pytest.fixture(scope="session")
def moto(moto_server: MotoServer) -> MotoServer:
    """The session's moto server, never reset here (unlike the harness's ``moto``): module-scoped
    fixtures of this suite keep resources in it across tests."""
    return moto_server


@pytest.fixture(autouse=True)
def aws_env(aws_sandbox):
    """Every test in this suite runs in the harness's AWS sandbox (dummy keys, no ~/.aws)."""
    return aws_sandbox


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
                ("min" in meta and value < meta["min"]) or ("max" in meta and value > meta["max"])):
            self.problems.append(f"{where}: {value} is outside [{meta.get('min')},"
                                     f" {meta.get('max')}]")

    def _bounds(self, size: int, meta: dict, where: str, unit: str) -> None:
        if ("min" in meta and size < meta["min"]) or ("max" in meta and size > meta["max"]):
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
        # a session that cannot open (unknown profile): the test wants that error
        with contextlib.suppress(MldockError):
            clients.session.events.register("provide-client-params", shapes)

        return SageMakerDeployer(opts, project=project, clients=clients,
                                 storage_uri=storage_uri or f"s3://{bucket}/{project}",
                                 poll_s=0.01)

    return make


@pytest.fixture
def deployer(make_deployer):
    return make_deployer()


# --- a registry standing in for ECR -------------------------------------------------------------


@pytest.fixture(scope="session")
def registry(start_registry):
    """A registry that accepts user ``AWS`` with moto's ECR token as password, as ECR would."""
    return start_registry(("AWS", ECR_TOKEN))


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
