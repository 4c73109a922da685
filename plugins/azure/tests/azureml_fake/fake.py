"""``AzureMLFake``: the server, its state and the knobs tests turn.

One fake per test session (the ``azureml_fake`` fixture): tests use unique names instead of
resetting it. It starts with one subscription, resource group and workspace
(:attr:`AzureMLFake.workspace`), a compute cluster ``cpu-cluster``, the default blob datastore
on Azurite, and a container registry whose login server is the fake itself (for the ACR token
exchange; images are pushed to a real local registry through ``registry_host``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from . import assets, identity, jobrun, jobs, online, runhistory, serving, sweeps, workspaces
from .containers import ContainerRunner
from .faults import Faults
from .lro import Operations
from .routing import PROVIDER, Router
from .server import FakeServer, Recorded
from .state import Store
from .storage import BlobSide
from .tls import FakeTLS

ROUTE_MODULES: tuple[ModuleType, ...] = (identity, workspaces, assets, jobs, runhistory,
                                          online, sweeps)
SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
RESOURCE_GROUP = "mldock-fake-rg"
WORKSPACE = "mldock-fake-ws"
COMPUTE = "cpu-cluster"
REGISTRY = "mldockfakeacr"
LOCATION = "westeurope"


class FakeCredential:
    """A ``TokenCredential`` handing out the fake's tokens, for in-process clients."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        audience = scopes[0].removesuffix("/.default") if scopes else ""
        return AccessToken(identity.jwt(audience), int(time.time()) + identity.TOKEN_SECONDS)


class AzureMLFake:
    """Azure Resource Manager + Azure ML on ``https://127.0.0.1:PORT``. See the package docs."""

    subscription_id = SUBSCRIPTION
    resource_group = RESOURCE_GROUP
    workspace = WORKSPACE
    compute = COMPUTE
    registry_name = REGISTRY
    location = LOCATION
    tenant_id = identity.TENANT
    cloud = identity.CLOUD
    acr_user = identity.ACR_USER
    acr_refresh_token = identity.ACR_REFRESH_TOKEN

    def __init__(self, folder: Path, azurite: Any, session_id: str,
                 extra_routes: Iterable[ModuleType] = ()) -> None:
        self.folder = folder
        self.session_id = session_id
        self.tls = FakeTLS(folder / "tls")
        self.store = Store()
        self.faults = Faults()
        self.operations = Operations()
        self.blob = BlobSide(azurite)
        self.containers = ContainerRunner(session_id, folder / "runs")
        self.job_runs: dict[str, jobrun.JobRun] = {}
        self.servings: dict[str, serving.Serving] = {}
        self.deployment_errors: dict[str, dict[str, Any]] = {}
        self.endpoint_keys: dict[str, dict[str, str]] = {}
        self.router = Router()
        self.operations.register(self.router)
        for module in (*ROUTE_MODULES, *extra_routes):
            module.register(self.router, self)
        self.server = FakeServer(self.router, self.faults, self.tls)

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> AzureMLFake:
        self.server.start()
        self.add_workspace(WORKSPACE)
        return self

    def stop(self) -> None:
        self.containers.stop_all()
        self.server.stop()

    # --- where it is ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``: ARM, the Entra ID stand-in and the ACR stand-in."""
        return self.server.url

    @property
    def metadata_url(self) -> str:
        """What ``ARM_CLOUD_METADATA_URL`` takes."""
        return f"{self.url}/metadata/endpoints?api-version=2019-05-01"

    @property
    def registry_login_server(self) -> str:
        """The workspace registry's ``loginServer``: the fake (token exchange only)."""
        return self.url.removeprefix("https://")

    @property
    def ca_bundle(self) -> Path:
        return self.tls.ca_bundle

    def workspace_id(self, name: str = WORKSPACE) -> str:
        return (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
                f"{PROVIDER}/workspaces/{name}")

    # --- environments for clients -----------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """Variables that make an in-process SDK (or any subprocess) find and trust the fake."""
        return {"ARM_CLOUD_METADATA_URL": self.metadata_url, **self.tls.environment()}

    def credential_environment(self) -> dict[str, str]:
        """:meth:`environment` plus a managed identity ``DefaultAzureCredential`` picks up (App
        Service flavour: ``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``). Dummy values only."""
        return {**self.environment(), "IDENTITY_ENDPOINT": f"{self.url}/msi/token",
                "IDENTITY_HEADER": identity.IDENTITY_HEADER}

    def credential(self) -> FakeCredential:
        return FakeCredential()

    def ml_client(self, workspace: str = WORKSPACE, **kwargs: Any) -> Any:
        """An ``MLClient`` on the fake (the caller must have :meth:`environment` applied)."""
        from azure.ai.ml import MLClient

        return MLClient(self.credential(), SUBSCRIPTION, RESOURCE_GROUP, workspace,
                        cloud=self.cloud, **kwargs)

    # --- state a test arranges -----------------------------------------------------------------

    def add_workspace(self, name: str) -> str:
        """Create a workspace with the ``cpu-cluster`` compute and the default datastore."""
        document = workspaces.workspace_document(self, name)
        self.store.put(document)
        self.add_compute(COMPUTE, workspace=name)
        container = self.blob.create_container(f"azureml-blobstore-{name}".lower()[:63])
        self.store.put(workspaces.datastore_document(document["id"],
                                                     workspaces.DEFAULT_DATASTORE,
                                                     self.blob.account, container))
        return str(document["id"])

    def add_compute(self, name: str, workspace: str = WORKSPACE,
                    vm_size: str = "STANDARD_DS3_V2", max_nodes: int = 4) -> None:
        self.store.put(workspaces.compute_document(self.workspace_id(workspace), name, vm_size,
                                                   max_nodes))

    def fail_next(self, method: str, path_regex: str, status: int, code: str, message: str,
                  times: int = 1) -> None:
        """The next ``times`` requests matching ``method`` (or ``"*"``) and ``path_regex``
        answer ``status`` with ARM's error shape ``{"error": {"code", "message"}}``."""
        self.faults.add(method, path_regex, status, code, message, times)

    # --- what happened ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        return list(self.server.requests)

    def sent(self, method: str, path_regex: str) -> list[Recorded]:
        """Recorded requests whose method and path match (``re.search``, case-insensitive)."""
        pattern = re.compile(path_regex, re.IGNORECASE)
        return [r for r in self.server.requests
                if r.method == method.upper() and pattern.search(r.path)]

    @property
    def crashes(self) -> list[str]:
        """Tracebacks of the fake's own bugs (a route raising something else than ArmError)."""
        return list(self.server.crashes)

    def wait_for(self, check: Callable[[], Any], timeout: float = 300.0) -> Any:
        """Poll ``check`` until it returns something truthy (tests waiting on a state)."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.2)
