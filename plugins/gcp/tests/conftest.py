"""Fixtures for the whole mldock-gcp suite: the Vertex AI fake, credentials, a sandbox, config.

Vertex AI has no emulator: ``vertex_fake`` (package ``vertex_fake`` next to this file; its
docstring is the full reference) answers the REST API on 127.0.0.1, parses every body into the
API's own types and runs the containers on the real Docker engine. Cloud Storage is the harness's
``gcs_emulator``. Every test runs in ``gcp_sandbox``: the developer's gcloud configuration and
Application Default Credentials are hidden and the metadata server is a closed local port, so a
test can never reach a real project.

Test modules of this folder import the package as ``vertex_fake`` (this folder is put on
``sys.path`` once, here: pytest's importlib mode does not).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from vertex_fake import VertexFake  # noqa: E402 - needs the path above
from vertex_fake.tokens import write_service_account  # noqa: E402

REGION = "us-central1"
HIDDEN_ENV = ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT",
              "CLOUDSDK_CORE_PROJECT", "GOOGLE_CLOUD_QUOTA_PROJECT", "CLOUDSDK_CONFIG",
              "STORAGE_EMULATOR_HOST", "GOOGLE_API_USE_CLIENT_CERTIFICATE",
              "GOOGLE_CLOUD_UNIVERSE_DOMAIN", "GOOGLE_API_USE_MTLS_ENDPOINT")


# --- the sandbox -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _closed_metadata_host() -> str:
    """A loopback port nothing listens on: google-auth's metadata-server probe fails at once."""
    from mldock.testing.processes import free_port

    return f"127.0.0.1:{free_port()}"


@pytest.fixture(autouse=True)
def gcp_sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory,
                _closed_metadata_host: str) -> Path:
    """No developer credentials, project or gcloud config; no metadata server. Returns the
    empty ``CLOUDSDK_CONFIG`` folder. A test sets ``GOOGLE_APPLICATION_CREDENTIALS`` itself."""
    config = tmp_path_factory.mktemp("gcloud-config")
    for name in HIDDEN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(config))
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setenv("GCE_METADATA_HOST", _closed_metadata_host)
    monkeypatch.setenv("GCE_METADATA_IP", _closed_metadata_host)
    return config


# --- the fake ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def vertex_fake_server(gcs_emulator: str) -> Iterator[VertexFake]:
    """The session's fake, started once; stopping it removes every container it started."""
    fake = VertexFake(storage_emulator=gcs_emulator).start()
    yield fake
    fake.stop()


@pytest.fixture
def vertex_fake(vertex_fake_server: VertexFake) -> Iterator[VertexFake]:
    """The session's fake for one test: its faults are cleared afterwards, and a handler bug
    of the fake (an answer 500) fails the test."""
    fake = vertex_fake_server
    fake.faults.clear()
    fake.require_auth = False
    seen = len(fake.internal_errors)
    yield fake
    fake.faults.clear()
    fake.require_auth = False
    errors = fake.internal_errors[seen:]
    assert not errors, "the Vertex fake failed on a request:\n" + "\n".join(errors)


@dataclass(frozen=True)
class ServiceAccount:
    """A throwaway service-account key file trusted by the fake."""

    path: Path
    info: dict[str, Any]

    @property
    def email(self) -> str:
        return str(self.info["client_email"])

    @property
    def env(self) -> dict[str, str]:
        return {"GOOGLE_APPLICATION_CREDENTIALS": str(self.path)}


@pytest.fixture
def gcp_service_account(vertex_fake: VertexFake, tmp_path: Path) -> ServiceAccount:
    """A new RSA key for ``vertex_fake.project`` whose ``token_uri`` is the fake's ``/token``;
    not put in the environment (``monkeypatch.setenv(*…env.items())`` or pass ``.env``)."""
    path = tmp_path / "service-account.json"
    info = write_service_account(vertex_fake, path, vertex_fake.project)
    return ServiceAccount(path, info)


@pytest.fixture(scope="session")
def gcp_registry(start_registry: Callable[..., Any], vertex_fake_server: VertexFake) -> Any:
    """A registry standing in for Artifact Registry: user ``oauth2accesstoken``, password the
    access token the fake issues (what a push fetches just before pushing)."""
    return start_registry(("oauth2accesstoken", vertex_fake_server.access_token))


@pytest.fixture(scope="session")
def make_gcs_bucket(gcs_emulator: str) -> Callable[[str], str]:
    """``make_gcs_bucket(prefix)``: a new bucket ``<prefix>-<hex>`` on the emulator; its name."""
    from mldock.testing.processes import http_request

    def make(prefix: str = "mldock-gcp-test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        status, _, body = http_request(
            "POST", f"{gcs_emulator}/storage/v1/b?project=test", json.dumps({"name": name})
            .encode(), {"Content-Type": "application/json"})
        assert status < 300, f"the GCS emulator refused bucket {name}: {body[:300]!r}"
        return name

    return make


@pytest.fixture
def gcp_env(vertex_fake: VertexFake, gcp_service_account: ServiceAccount, gcs_emulator: str,
            gcp_sandbox: Path, _closed_metadata_host: str) -> dict[str, str]:
    """The environment of a ``mldock`` subprocess on the fake: this process's minus
    ``MLDOCK_*`` (except ``MLDOCK_REQUIRE_DOCKER``), the sandbox, the service-account key and
    ``STORAGE_EMULATOR_HOST``."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("MLDOCK_") or key == "MLDOCK_REQUIRE_DOCKER"}
    env.update(gcp_service_account.env)
    env.update({"CLOUDSDK_CONFIG": str(gcp_sandbox), "NO_GCE_CHECK": "true",
                "GCE_METADATA_HOST": _closed_metadata_host,
                "GCE_METADATA_IP": _closed_metadata_host,
                "STORAGE_EMULATOR_HOST": gcs_emulator})
    return env


GCP_ENV_BLOCK = """
# --- added by the mldock-gcp tests: Vertex AI on the local fake, GCS on the emulator ---
[env.{env}.deploy]
deployer = "vertex"

[env.{env}.deploy.vertex]
project = "{project}"
region = "{region}"
staging_bucket = "gs://{bucket}/staging"
api_endpoint = "{api_endpoint}"
registry_host = "{registry_host}"

[env.{env}.storage]
uri = "gs://{bucket}/{{project}}"

[env.{env}.storage.gcs]
endpoint_url = "{gcs}"
"""


@pytest.fixture
def gcp_config_block(vertex_fake: VertexFake, gcs_emulator: str) -> Callable[..., str]:
    """``gcp_config_block(bucket, registry_host, env="gcp")``: the ``[env.<env>]`` TOML text
    (append it to ``mldock.toml``) with Vertex on the fake and storage on the emulator."""
    def block(bucket: str, registry_host: str, env: str = "gcp") -> str:
        return GCP_ENV_BLOCK.format(env=env, project=vertex_fake.project, region=REGION,
                                    bucket=bucket, api_endpoint=vertex_fake.url,
                                    registry_host=registry_host, gcs=gcs_emulator)

    return block


@dataclass
class VertexClients:
    """GAPIC clients with REST transport on the fake (anonymous credentials)."""

    job: Any
    model: Any
    endpoint: Any
    prediction: Any
    parent: str


@pytest.fixture
def vertex_clients(vertex_fake: VertexFake) -> VertexClients:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1

    options = {"api_endpoint": vertex_fake.url}
    made = {name: getattr(aiplatform_v1, cls)(credentials=AnonymousCredentials(),
                                              transport="rest", client_options=options)
            for name, cls in (("job", "JobServiceClient"), ("model", "ModelServiceClient"),
                              ("endpoint", "EndpointServiceClient"),
                              ("prediction", "PredictionServiceClient"))}
    return VertexClients(**made, parent=f"projects/{vertex_fake.project}/locations/{REGION}")


# --- a tiny image for the fake's own tests -----------------------------------------------------


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    """A pinged docker client (skips, or fails under MLDOCK_REQUIRE_DOCKER=1, without one)."""
    from mldock.testing.docker import require_docker

    client = require_docker()
    yield client
    client.close()


@pytest.fixture(scope="session")
def vertex_test_image(docker_engine: Any, tmp_path_factory: pytest.TempPathFactory
                      ) -> Iterator[str]:
    """``mldock-vertex-fake-test:<hex>``: the base image plus ``vertex_fake/testimage``
    (``/app/job.py`` prints its environment and exits with ``$EXIT_CODE``; ``/app/serve.py``
    answers the ``AIP_*`` routes, echoing instances). Removed at the end."""
    from mldock.testing.docker import require_image

    base = os.environ.get("MLDOCK_TEST_BASE_IMAGE", "python:3.11-slim")
    require_image(docker_engine, base)
    context = tmp_path_factory.mktemp("vertex-test-image")
    source = HERE / "vertex_fake" / "testimage"
    for name in ("job.py", "serve.py"):
        (context / name).write_text((source / name).read_text())
    (context / "Dockerfile").write_text(
        f"FROM {base}\nLABEL mldock.test=vertex-fake\nCOPY job.py serve.py /app/\n"
        'ENTRYPOINT ["python3", "-u"]\nCMD ["/app/job.py"]\n')
    tag = f"mldock-vertex-fake-test:{uuid.uuid4().hex[:12]}"
    docker_engine.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    yield tag
    from docker.errors import APIError, ImageNotFound

    with contextlib.suppress(ImageNotFound, APIError):
        docker_engine.images.remove(tag)
