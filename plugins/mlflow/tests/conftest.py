"""Real MLflow tracking servers on 127.0.0.1 for the plugin's tests, one per session.

* ``mlflow_server``: ``mlflow server`` with a SQLite backend store and a local artifact folder in
  a temporary directory, one worker, job execution off (ready in seconds instead of ~17 s). Its
  artifacts are served through the server (``--artifacts-destination``): the client uploads over
  HTTP as it would to a remote server, instead of writing into the folder itself, which is what
  ``--default-artifact-root DIR`` would make it do.
* ``mlflow_auth_server``: the same with ``--app-name basic-auth`` (MLflow's HTTP basic
  authentication; needs ``mlflow[auth]``), started only by the tests that use it.

Both are started with the ``mlflow`` script next to this interpreter, stopped by PID at the end
of the session (their workers exit with them), and never bind anything but 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.register_assert_rewrite("mldock.testing")

MLFLOW = Path(sys.executable).parent / "mlflow"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "mldock-test-admin-pw"  # a throwaway password of a throwaway local server
START_TIMEOUT = 180.0  # ~6 s on an idle machine; far more on a loaded 2-core CI box
CLIENT_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                    "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                    "MLFLOW_TRACKING_URI", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running ``mlflow server``: its URL, data folder and process."""

    url: str
    root: Path
    process: subprocess.Popen
    admin_user: str | None = None
    admin_password: str | None = None

    @property
    def uri(self) -> str:
        """The URI a project writes in ``[tracking] uri``."""
        return "mlflow+" + self.url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def _wait_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {process.returncode}:\n"
                               + log.read_text(errors="replace")[-3000:])
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"mlflow server at {url} not ready after {START_TIMEOUT:.0f} s:\n"
                       + log.read_text(errors="replace")[-3000:])


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the server we started, then its own process group if workers linger."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    try:  # the group is the server's own (start_new_session): only its workers are left in it
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def start_server(root: Path, *extra: str, env: dict[str, str] | None = None) -> Server:
    if not MLFLOW.exists():
        pytest.skip("the `mlflow` server is not installed: pip install 'mldock-mlflow[test]'")
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "server.log"
    server_env = {k: v for k, v in os.environ.items() if k not in CLIENT_VARIABLES}
    server_env.update({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})})
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(MLFLOW), "server", "--workers", "1",
             "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
             "--artifacts-destination", str(root / "artifacts"),
             "--host", "127.0.0.1", "--port", str(port), *extra],
            cwd=root, stdout=out, stderr=subprocess.STDOUT, env=server_env,
            start_new_session=True)
    try:
        _wait_ready(url, process, log)
    except BaseException:
        _stop(process)
        raise
    return Server(url, root, process)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Server:
    """A plain MLflow tracking server (no authentication) for the whole session."""
    server = start_server(tmp_path_factory.mktemp("mlflow-server"))
    yield server
    _stop(server.process)


@pytest.fixture(scope="session")
def mlflow_auth_server(tmp_path_factory) -> Server:
    """An MLflow server with basic authentication; the admin is ADMIN_USER / ADMIN_PASSWORD."""
    root = tmp_path_factory.mktemp("mlflow-auth-server")
    ini = root / "basic_auth.ini"
    ini.write_text("[mlflow]\ndefault_permission = READ\n"
                   f"database_uri = sqlite:///{root / 'basic_auth.db'}\n"
                   f"admin_username = {ADMIN_USER}\n"
                   "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    server = start_server(root, "--app-name", "basic-auth",
                          env={"MLFLOW_AUTH_CONFIG_PATH": str(ini),
                               "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
                               "MLFLOW_FLASK_SERVER_SECRET_KEY": "mldock-test-only"})
    server.admin_user, server.admin_password = ADMIN_USER, ADMIN_PASSWORD
    yield server
    _stop(server.process)


@pytest.fixture
def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound once, then released)."""
    return free_port()


@pytest.fixture(autouse=True)
def _restore_client_environment():
    """The tracker hands settings and credentials to MLflow's client through os.environ: start
    every test without them and undo what it set, so no test sees another's credentials."""
    saved = {name: os.environ.pop(name) for name in CLIENT_VARIABLES if name in os.environ}
    yield
    for name in CLIENT_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(saved)
