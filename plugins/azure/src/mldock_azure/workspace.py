"""One Azure ML workspace as the deployer's parts see it: the ``MLClient``, the workspace's own
facts (its container registry, its data-plane URL) and plain authenticated REST calls.

The credential comes from :mod:`mldock_azure.clients` (one chain for the whole package). Nothing
is built or asked before a command needs it, and ``azure.ai.ml`` (~1.3 s to import) is imported
only then. The workspace's description is read once per deployer: its registry and discovery URL
do not change while a command runs.
"""

from __future__ import annotations

import json
import threading
from functools import cached_property
from typing import Any

from mldock.errors import MldockError

from mldock_azure import __version__
from mldock_azure.clients import AzureIdentity, shared_identity
from mldock_azure.config import AzureMLOptions
from mldock_azure.errors import translated
from mldock_azure.names import registry_host

REGISTRY_API = "2023-07-01"
USER_AGENT = f"mldock-azure/{__version__}"
TIMEOUT_S = 60


class AzureMLClients:
    """The workspace's ``MLClient`` and REST pipeline, built on first use; thread-safe.

    Args:
        options: ``[deploy.azureml]``.
        identity: the caller's identity (default: the package's shared one).
    """

    def __init__(self, options: AzureMLOptions, identity: AzureIdentity | None = None) -> None:
        self.options = options
        self.identity = identity or shared_identity()
        self._lock = threading.Lock()
        self._ml: Any = None
        self._workspace: Any = None
        self._api: str | None = None

    @property
    def workspace_label(self) -> str:
        """How messages name the workspace: ``workspace 'ws' (resource group 'rg')``."""
        options = self.options
        return f"workspace {options.workspace!r} (resource group {options.resource_group!r})"

    @property
    def ml(self) -> Any:
        """The ``azure.ai.ml.MLClient`` of the workspace (telemetry off: no App Insights)."""
        with self._lock:
            if self._ml is None:
                with translated("connect to Azure Machine Learning",
                                resource=self.workspace_label):
                    from azure.ai.ml import MLClient

                    options = self.options
                    self._ml = MLClient(self.identity.credential, options.subscription_id,
                                        options.resource_group, options.workspace,
                                        cloud=options.cloud, user_agent=USER_AGENT,
                                        enable_telemetry=False, show_progress=False)
            return self._ml

    def workspace(self) -> Any:
        """The workspace entity (read once): a missing workspace is a one-line NotFoundError."""
        if self._workspace is None:
            with translated(f"read {self.workspace_label}", resource=self.workspace_label):
                self._workspace = self.ml.workspaces.get(self.options.workspace)
        return self._workspace

    def registry_name(self) -> str:
        """The ACR the images go to: ``registry`` from the config, else the workspace's own."""
        if self.options.registry:
            return self.options.registry
        return self._workspace_registry_id().rstrip("/").rsplit("/", 1)[-1]

    def _workspace_registry_id(self) -> str:
        arm_id = str(getattr(self.workspace(), "container_registry", None) or "")
        if "/registries/" not in arm_id.lower() or arm_id.rstrip("/").endswith("/registries"):
            raise MldockError(f"{self.workspace_label} has no container registry yet",
                              hint="set [deploy.azureml] registry = \"<ACR name>\" (Azure ML"
                                   " creates the workspace's own registry on its first image"
                                   " build), or attach one: 'az ml workspace update"
                                   " --container-registry <ACR id>'")
        return arm_id

    def registry_login_server(self) -> str:
        """The registry's login server (``<name>.azurecr.io``; sovereign clouds differ).

        The workspace's own registry is looked up in Resource Manager, which names its login
        server; a configured ``registry`` name (or a registry the caller may push to but not
        read in ARM) gets the public cloud's form.
        """
        if self.options.registry:
            return registry_host(self.options.registry)
        arm_id = self._workspace_registry_id()
        url = f"{self.resource_manager}{arm_id}?api-version={REGISTRY_API}"
        with translated("look up the workspace's container registry", endpoint=url):
            status, body = self.get(url)
        try:
            server = json.loads(body)["properties"]["loginServer"] if status == 200 else ""
        except (ValueError, KeyError, TypeError):
            server = ""
        return str(server) or registry_host(self.registry_name())

    @cached_property
    def resource_manager(self) -> str:
        """The configured cloud's Resource Manager URL (a custom cloud's from the metadata at
        ``ARM_CLOUD_METADATA_URL``), as ``MLClient`` resolves it."""
        with translated(f"look up the Azure cloud {self.options.cloud!r}"):
            # azure-ai-ml has no public accessor for a cloud's endpoints; this is the function
            # MLClient itself calls, so both always agree on where Resource Manager is
            from azure.ai.ml._azure_environments import _get_base_url_from_metadata

            return str(_get_base_url_from_metadata(self.options.cloud)).rstrip("/")

    @property
    def arm_scope(self) -> str:
        """The Resource Manager token scope: what ARM calls and the ACR exchange want."""
        return f"{self.resource_manager}/.default"

    # --- plain REST calls (the run-history data plane, the discovery document) -----------------
    @cached_property
    def _pipeline(self) -> Any:
        from azure.core import PipelineClient
        from azure.core.pipeline import policies

        # explicit policies: the default set would decode bodies by content type (log files are
        # text, and a partial one is not valid JSON), and log whole requests at debug level
        chosen = [policies.HeadersPolicy({"User-Agent": USER_AGENT}),
                  policies.RetryPolicy(retry_total=3), policies.RedirectPolicy()]
        return PipelineClient(base_url="", policies=chosen)

    def get(self, url: str, *, authenticated: bool = True,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """``(status, body)`` of ``GET url``: with the caller's bearer token for Azure ML's data
        plane, without one for pre-signed (SAS) log URLs. Raises only for no connection."""
        from azure.core.rest import HttpRequest

        sent = dict(headers or {})
        if authenticated and not url.lower().startswith("https://"):
            raise MldockError(f"refusing to send an Azure token over plain HTTP to {url}",
                              hint="Azure ML's data plane speaks HTTPS: check the cloud's"
                                   " endpoints (ARM_CLOUD_METADATA_URL)")
        if authenticated:
            sent["Authorization"] = f"Bearer {self.identity.access_token(self.arm_scope)}"
        request = HttpRequest("GET", url, headers=sent)
        response = self._pipeline.send_request(request, stream=False,
                                               connection_timeout=10, read_timeout=TIMEOUT_S)
        return response.status_code, response.read()

    def post_form(self, url: str, form: dict[str, str]) -> tuple[int, bytes]:
        """``(status, body)`` of a form POST without a bearer header (the ACR token exchange
        carries its token in the form). Raises only for no connection."""
        from azure.core.rest import HttpRequest

        request = HttpRequest("POST", url, data=form,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        response = self._pipeline.send_request(request, stream=False,
                                               connection_timeout=10, read_timeout=TIMEOUT_S)
        return response.status_code, response.read()

    def api_url(self) -> str:
        """The workspace's data-plane base URL (run history), from its discovery document."""
        if self._api:
            return self._api
        discovery = str(getattr(self.workspace(), "discovery_url", None) or "")
        if not discovery:
            raise MldockError(f"{self.workspace_label} names no discovery URL",
                              hint="the workspace may still be provisioning; retry shortly")
        with translated(f"read the discovery document of {self.workspace_label}",
                        endpoint=discovery):
            status, body = self.get(discovery, authenticated=False)
        try:
            api = str(json.loads(body)["api"]).rstrip("/") if status == 200 else ""
        except (ValueError, KeyError, TypeError):
            api = ""
        if not api:
            raise MldockError(f"the discovery document of {self.workspace_label} has no API URL"
                              f" (HTTP {status})", hint="retry; if it persists, check the cloud"
                              " in [deploy.azureml]")
        self._api = api
        return api

    def run_url(self, run_id: str) -> str:
        """The run-history URL of a job (Azure ML's jobs are runs in its run history)."""
        options = self.options
        return (f"{self.api_url()}/history/v1.0/subscriptions/{options.subscription_id}"
                f"/resourceGroups/{options.resource_group}/providers/"
                f"Microsoft.MachineLearningServices/workspaces/{options.workspace}/runs/{run_id}")
