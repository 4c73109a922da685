"""Cloud services on loopback for tests: moto (AWS), an MLflow server and a GCS emulator.

Each is the real program a user would run against (``moto_server``, ``mlflow server``,
``gcp-storage-emulator``), started through :class:`~mldock.testing.processes.ProcessSet`: loopback
only, its own process group, a log whose tail a failure shows, and the one missing-program policy.
Azurite lives in :mod:`mldock.testing.azurite` (it needs npm).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mldock.testing.processes import (
    LOOPBACK,
    ProcessSet,
    Served,
    ServerProcess,
    free_port,
    http_request,
    require_program,
)

MOTO_ACCOUNT = "123456789012"  # moto's default account
MOTO_REGION = "us-east-1"
MLFLOW_CLIENT_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                           "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                           "MLFLOW_TRACKING_URI", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT")


class MotoServer(Served):
    """``moto_server`` on 127.0.0.1: every AWS service at :attr:`url`, in memory."""

    def post(self, path: str, body: bytes = b"", content_type: str = "text/plain") -> None:
        """POST ``body`` to moto's own API (``/moto-api/...``); an error status fails."""
        status, _, answer = http_request("POST", f"{self.url}{path}", body,
                                         {"Content-Type": content_type})
        if status >= 300:
            raise AssertionError(f"moto answered {status} to POST {path}: {answer[:500]!r}")

    def reset(self) -> None:
        """Forget every resource of every service and account (``POST /moto-api/reset``)."""
        self.post("/moto-api/reset")

    def queue_endpoint_results(self, *results: dict[str, str], account: str = MOTO_ACCOUNT,
                               region: str = MOTO_REGION) -> None:
        """What the next SageMaker ``invoke_endpoint`` calls answer (moto runs no container)."""
        self.post("/moto-api/static/sagemaker/endpoint-results",
                  json.dumps({"account_id": account, "region": region,
                              "results": list(results)}).encode(), "application/json")

    def stop(self) -> None:
        self.server.stop()


def start_moto(processes: ProcessSet, env: dict[str, str] | None = None) -> MotoServer:
    """Start ``moto_server -H 127.0.0.1 -p PORT``; ``env`` adds to this process's environment."""
    program = require_program("moto_server", "pip install 'moto[server]' (a plugin's test extra)")
    port = free_port()
    server = processes.start("moto_server", [program, "-H", LOOPBACK, "-p", str(port)],
                             port=port, health_url=f"http://{LOOPBACK}:{port}/moto-api/",
                             env={**os.environ, **(env or {})})
    return MotoServer(server)


class MlflowServer(Served):
    """A running ``mlflow server``: its URL, data folder, and admin credentials when it was
    started with basic authentication."""

    def __init__(self, server: ServerProcess, root: Path, admin_user: str | None = None,
                 admin_password: str | None = None) -> None:
        super().__init__(server)
        self.root = root
        self.admin_user = admin_user
        self.admin_password = admin_password

    @property
    def uri(self) -> str:
        """The URI a project writes in ``[tracking] uri``."""
        return "mlflow+" + self.url

    def stop(self) -> None:
        self.server.stop()


def start_mlflow(processes: ProcessSet, root: Path, *extra: str,
                 env: dict[str, str] | None = None) -> MlflowServer:
    """Start ``mlflow server`` with a SQLite store and served artifacts under ``root``.

    One worker and ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`` make it ready in seconds instead
    of ~17. Artifacts go through the server (``--artifacts-destination``): the client uploads over
    HTTP as it would to a remote server. The client's own ``MLFLOW_*`` variables are not passed
    on; ``extra`` arguments and ``env`` are (e.g. ``--app-name basic-auth``).
    """
    program = require_program("mlflow", "pip install 'mlflow[auth]' (mldock-mlflow's test extra)")
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server_env = {k: v for k, v in os.environ.items() if k not in MLFLOW_CLIENT_VARIABLES}
    server_env.update({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})})
    command = [program, "server", "--workers", "1",
               "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
               "--artifacts-destination", str(root / "artifacts"),
               "--host", LOOPBACK, "--port", str(port), *extra]
    server = processes.start("mlflow-server", command, port=port, cwd=root, env=server_env,
                             health_url=f"http://{LOOPBACK}:{port}/health")
    return MlflowServer(server, root)


def start_mlflow_with_auth(processes: ProcessSet, root: Path, admin_user: str,
                           admin_password: str) -> MlflowServer:
    """:func:`start_mlflow` with MLflow's HTTP basic authentication (``mlflow[auth]``):
    everyone may read, ``admin_user`` may do anything."""
    root.mkdir(parents=True, exist_ok=True)
    ini = root / "basic_auth.ini"
    ini.write_text("[mlflow]\ndefault_permission = READ\n"
                   f"database_uri = sqlite:///{root / 'basic_auth.db'}\n"
                   f"admin_username = {admin_user}\n"
                   "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    found = start_mlflow(processes, root, "--app-name", "basic-auth",
                         env={"MLFLOW_AUTH_CONFIG_PATH": str(ini),
                              "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
                              "MLFLOW_FLASK_SERVER_SECRET_KEY": "mldock-test-only"})
    found.admin_user, found.admin_password = admin_user, admin_password
    return found


def start_gcs_emulator(processes: ProcessSet) -> ServerProcess:
    """Start ``gcp-storage-emulator`` in memory; its ``url`` is what ``STORAGE_EMULATOR_HOST``
    takes. Buckets are created through its JSON API (``POST /storage/v1/b``)."""
    program = require_program("gcp-storage-emulator",
                              "pip install gcp-storage-emulator (uv sync installs the dev group)")
    port = free_port()
    return processes.start("gcp-storage-emulator",
                           [program, "start", "--host", LOOPBACK, "--port", str(port),
                            "--in-memory"],
                           port=port, health_url=f"http://{LOOPBACK}:{port}/")
