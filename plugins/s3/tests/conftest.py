"""A real S3 endpoint for the tests: moto in server mode on 127.0.0.1, one per session.

``moto_server`` comes from the same virtual environment as the tests (the ``test`` extra installs
``moto[server]``), so nothing outside the project is needed. Every test runs with dummy keys and
with the developer's own AWS files and variables hidden: a test can never reach a real account.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

# the contract classes live in an installed package: rewrite their asserts for useful messages
pytest.register_assert_rewrite("mldock.testing")

MOTO_SERVER = Path(sys.executable).parent / "moto_server"
DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # no 1 s wait on the instance metadata service
}
HIDDEN_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
              "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ROLE_ARN",
              "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
              "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS",
              "AWS_REQUEST_CHECKSUM_CALCULATION")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    """One ``moto_server`` process; :meth:`stop` ends it by its PID (and its process group)."""

    def __init__(self, log_dir: Path, env: dict[str, str] | None = None):
        if not MOTO_SERVER.exists():
            pytest.fail(f"{MOTO_SERVER} is missing: install the test extra"
                        " (uv pip install -e 'plugins/s3[test]')", pytrace=False)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"moto-{self.port}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)], stdout=log,
                stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                start_new_session=True)
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

    def post(self, path: str, body: bytes = b"") -> None:
        request = urllib.request.Request(f"{self.url}{path}", data=body, method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10):
            pass

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
    """``start_moto()`` starts one more moto server; every server started is stopped at the end."""
    started: list[MotoServer] = []

    def start() -> MotoServer:
        started.append(MotoServer(tmp_path_factory.mktemp("moto")))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def moto(start_moto) -> MotoServer:
    """The session's moto server (S3 endpoint at ``moto.url``)."""
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


@pytest.fixture
def s3(moto):
    """A plain boto3 client on the moto server, to look at what the store really wrote."""
    import boto3

    return boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="session")
def bucket(moto) -> str:
    """A bucket shared by the session; tests use their own prefix in it."""
    import boto3

    name = "mldock-tests"
    boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing"
                 ).create_bucket(Bucket=name)
    return name


@pytest.fixture
def options(moto):
    """Options pointing at moto, with 5 MiB parts so multipart paths run on small files."""
    from mldock_s3.config import S3Options

    return S3Options(endpoint_url=moto.url, max_concurrency=4, multipart_threshold_mb=5,
                     multipart_chunk_mb=5)


@pytest.fixture
def make_store(bucket, options):
    """``make_store(prefix=None, **option_overrides)``: a store under a fresh prefix."""
    from mldock_s3.store import S3ArtifactStore

    def make(prefix: str | None = None, **overrides):
        prefix = prefix or f"t-{uuid.uuid4().hex[:12]}"
        from mldock_s3.config import S3Options

        opts = S3Options(**{**options.model_dump(), **overrides}) if overrides else options
        return S3ArtifactStore(f"s3://{bucket}/{prefix}", opts)

    return make
