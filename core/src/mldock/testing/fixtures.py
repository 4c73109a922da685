"""mldock's test harness as an opt-in pytest plugin: ports, servers, a registry and emulators.

Enable it in your top-level ``conftest.py`` (after asking pytest to rewrite the kit's asserts)::

    import pytest

    pytest.register_assert_rewrite("mldock.testing")
    pytest_plugins = ["mldock.testing.fixtures"]

or on the command line with ``pytest -p mldock.testing.fixtures``. It is not registered through an
entry point: installing mldock never adds fixtures to anyone's test run. mldock's own repository
enables it in its root ``conftest.py``.

Fixtures (session-scoped where startup is slow; each stops what it started):

* ``unused_port``: a free TCP port on 127.0.0.1; ``server_processes``: a
  :class:`~mldock.testing.processes.ProcessSet` to start any server, stopped after the test.
* ``start_registry(auth=None)``, ``registry``, ``auth_registry``: Debian's ``docker-registry``,
  without and with htpasswd auth.
* ``start_moto(env=None)``, ``moto_server`` (shared by the session, never reset) and ``moto``
  (the same server reset before the test: an empty account); ``aws_sandbox``: dummy keys and
  the developer's AWS files and variables hidden (make it autouse in an AWS suite).
* ``start_mlflow``, ``mlflow_server``, ``mlflow_auth_server``, ``mlflow_client_environment``.
* ``gcs_emulator``: the URL of ``gcp-storage-emulator``; ``azurite``: an
  :class:`~mldock.testing.azurite.Azurite` (npm-installed on first use).

A missing program skips the test with a reason, or fails it when ``MLDOCK_REQUIRE_DOCKER=1``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mldock.testing import azurite as azurite_emulator
from mldock.testing import emulators
from mldock.testing import registry as registries
from mldock.testing.azurite import Azurite
from mldock.testing.emulators import MLFLOW_CLIENT_VARIABLES, MlflowServer, MotoServer
from mldock.testing.processes import ProcessSet, free_port
from mldock.testing.registry import LocalRegistry

MLFLOW_ADMIN = ("admin", "mldock-test-admin-pw")  # a throwaway login of a throwaway local server
AWS_DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # no 1 s wait on the instance metadata service
}
AWS_HIDDEN_ENV = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION",
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS",
    "AWS_REQUEST_CHECKSUM_CALCULATION",
)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``docker`` marker the harness's users put on engine tests."""
    config.addinivalue_line(
        "markers",
        "docker: needs a real Docker engine (fails instead of skipping when"
        " MLDOCK_REQUIRE_DOCKER=1)")


# --- ports and processes -----------------------------------------------------------------------


@pytest.fixture
def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound once, then released)."""
    return free_port()


@pytest.fixture
def server_processes(tmp_path: Path) -> Iterator[ProcessSet]:
    """Start servers with ``server_processes.start(name, command, port=..., health_url=...)``;
    each is stopped (its whole process group) after the test. Logs are under ``tmp_path``."""
    processes = ProcessSet(tmp_path / "server-logs")
    yield processes
    processes.stop_all()


@pytest.fixture(scope="session")
def session_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessSet]:
    """The session's servers (registries, emulators), stopped when the session ends."""
    processes = ProcessSet(tmp_path_factory.mktemp("server-logs"))
    yield processes
    processes.stop_all()


# --- a registry --------------------------------------------------------------------------------


@pytest.fixture(scope="session", name="start_registry")
def start_registry_fixture(session_processes: ProcessSet,
                           tmp_path_factory: pytest.TempPathFactory
                           ) -> Callable[..., LocalRegistry]:
    """``start_registry(auth=None)``: one more registry, with htpasswd auth for
    ``auth=(user, password)``; stopped when the session ends."""
    def start(auth: tuple[str, str] | None = None) -> LocalRegistry:
        root = tmp_path_factory.mktemp("registry")
        return registries.start_registry(session_processes, root, auth)

    return start


@pytest.fixture(scope="session")
def registry(start_registry: Callable[..., LocalRegistry]) -> LocalRegistry:
    """A registry open to anyone, for the session (``registry.host`` for image references)."""
    return start_registry()


@pytest.fixture(scope="session")
def auth_registry(start_registry: Callable[..., LocalRegistry]) -> LocalRegistry:
    """A registry requiring ``auth_registry.username`` / ``.password``, for the session."""
    return start_registry(("mldock", f"pw-{uuid.uuid4().hex}"))


# --- AWS (moto) --------------------------------------------------------------------------------


@pytest.fixture(scope="session", name="start_moto")
def start_moto_fixture(session_processes: ProcessSet) -> Callable[..., MotoServer]:
    """``start_moto(env=None)``: one more moto server (a fresh account), stopped at the end."""
    def start(env: dict[str, str] | None = None) -> MotoServer:
        return emulators.start_moto(session_processes, env)

    return start


@pytest.fixture(scope="session")
def moto_server(start_moto: Callable[..., MotoServer]) -> MotoServer:
    """The session's moto server, never reset: for suites whose fixtures outlive one test."""
    return start_moto()


@pytest.fixture
def moto(moto_server: MotoServer) -> MotoServer:
    """The session's moto server, reset before the test: it starts on an empty account."""
    moto_server.reset()
    return moto_server


@pytest.fixture
def aws_sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Dummy keys and empty AWS config files: a test never reads ~/.aws nor reaches a real
    account. Returns the folder of the empty files."""
    home = tmp_path_factory.mktemp("aws-home")
    for name in ("config", "credentials"):
        (home / name).write_text("")
    for name in AWS_HIDDEN_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in AWS_DUMMY_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
    return home


# --- MLflow ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mlflow_server(session_processes: ProcessSet,
                  tmp_path_factory: pytest.TempPathFactory) -> MlflowServer:
    """A plain MLflow tracking server (no authentication) for the session."""
    return emulators.start_mlflow(session_processes, tmp_path_factory.mktemp("mlflow-server"))


@pytest.fixture(scope="session")
def mlflow_auth_server(session_processes: ProcessSet,
                       tmp_path_factory: pytest.TempPathFactory) -> MlflowServer:
    """An MLflow server with basic authentication; its admin is ``.admin_user`` /
    ``.admin_password``."""
    root = tmp_path_factory.mktemp("mlflow-auth")
    return emulators.start_mlflow_with_auth(session_processes, root, *MLFLOW_ADMIN)


@pytest.fixture
def mlflow_client_environment() -> Iterator[None]:
    """Start the test without MLflow's client variables and undo what it sets: the tracker hands
    settings and credentials to MLflow's client through ``os.environ``."""
    saved = {name: os.environ.pop(name) for name in MLFLOW_CLIENT_VARIABLES if name in os.environ}
    yield
    for name in MLFLOW_CLIENT_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(saved)


# --- Google Cloud Storage and Azure Blob emulators ---------------------------------------------


@pytest.fixture(scope="session")
def gcs_emulator(session_processes: ProcessSet) -> str:
    """``http://127.0.0.1:PORT`` of an in-memory ``gcp-storage-emulator`` (what
    ``STORAGE_EMULATOR_HOST`` takes); tests create their own uniquely named buckets."""
    return emulators.start_gcs_emulator(session_processes).url


@pytest.fixture(scope="session")
def azurite(session_processes: ProcessSet,
            tmp_path_factory: pytest.TempPathFactory) -> Azurite:
    """Azurite's Blob service for the session; tests create their own uniquely named containers."""
    return azurite_emulator.start_azurite(session_processes, tmp_path_factory.mktemp("azurite"))


__all__: list[str] = []  # a pytest plugin: its fixtures are its interface, nothing to import
