"""One credential chain for the package: Application Default Credentials, or a key file named
through an environment variable, or none (public buckets, emulators).

The store and the deployer both start here, so ``mldock doctor``, a push and a training job agree
on who the caller is. Nothing is resolved before a command needs it: building a backend never
fails on missing credentials. The Vertex AI clients built on these credentials live below.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mldock.config.plugin_config import SecretRef

from mldock_gcp.errors import translated

if TYPE_CHECKING:  # pragma: no cover
    from mldock_gcp.config import VertexOptions

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
EMULATOR_VARIABLE = "STORAGE_EMULATOR_HOST"


@dataclass
class GoogleIdentity:
    """Credentials and the project they belong to (``None`` when the chain names none)."""

    credentials: Any
    project: str | None
    source: str  # "key file …", "application default", "anonymous"


class CredentialChain:
    """Resolves credentials once, on first use; thread-safe (transfers share one identity).

    Args:
        credentials_file: the ``env:NAME`` reference of a service-account key file path.
        anonymous: no credentials at all (public buckets, the storage emulator).
    """

    def __init__(self, credentials_file: SecretRef | None = None, *, anonymous: bool = False):
        self.credentials_file = credentials_file
        self.anonymous = anonymous
        self._identity: GoogleIdentity | None = None
        self._lock = threading.Lock()

    def identity(self) -> GoogleIdentity:
        """The caller's credentials and project (raises a one-line error when there are none)."""
        with self._lock:
            if self._identity is None:
                self._identity = self._resolve()
            return self._identity

    def _resolve(self) -> GoogleIdentity:
        if self.anonymous:
            from google.auth.credentials import AnonymousCredentials

            return GoogleIdentity(AnonymousCredentials(), None, "anonymous")
        if self.credentials_file is not None:
            path = self.credentials_file.value() or ""
            from google.oauth2 import service_account

            with translated(f"read the service-account key file named by"
                            f" {self.credentials_file.variable}"):
                credentials = service_account.Credentials.from_service_account_file(
                    path, scopes=[CLOUD_PLATFORM])
            return GoogleIdentity(credentials, credentials.project_id,
                                  f"key file from {self.credentials_file.variable}")
        import google.auth

        with translated("find Google Cloud credentials"):
            credentials, project = google.auth.default(scopes=[CLOUD_PLATFORM])
        return GoogleIdentity(credentials, project, "application default credentials")

    def access_token(self) -> str:
        """A fresh OAuth access token (Artifact Registry's ``oauth2accesstoken`` password)."""
        identity = self.identity()
        from google.auth.transport.requests import Request

        with translated("get an access token for the Google Cloud credentials"):
            identity.credentials.refresh(Request())
        token = getattr(identity.credentials, "token", None)
        if not token:
            from mldock.errors import MldockError

            raise MldockError("cannot get an access token: these credentials carry none",
                              hint="use a service account or user credentials (gcloud auth"
                                   " application-default login)")
        return str(token)


def emulator_host() -> str | None:
    """``STORAGE_EMULATOR_HOST`` as a URL, when set (the storage SDK honours it too)."""
    host = os.environ.get(EMULATOR_VARIABLE, "").strip()
    if not host:
        return None
    return host if "://" in host else f"http://{host}"


# --- Vertex AI and the REST APIs around it ---------------------------------------------------

REST_HOSTS = {
    "logging": "https://logging.googleapis.com",
    "artifactregistry": "https://artifactregistry.googleapis.com",
    "cloudresourcemanager": "https://cloudresourcemanager.googleapis.com",
}
"""The REST APIs mldock calls without a client library of their own (one small request each:
a client library apiece would add seconds of imports and three more dependencies)."""
SERVICES = {
    "job": "job_service.JobServiceClient",
    "model": "model_service.ModelServiceClient",
    "endpoint": "endpoint_service.EndpointServiceClient",
    "prediction": "prediction_service.PredictionServiceClient",
}
REST_TIMEOUT = 60.0


class VertexClients:
    """Lazily built Vertex AI clients (GAPIC, REST transport) sharing one credential chain.

    REST rather than gRPC: one HTTP stack for every request mldock makes, no long-lived channel
    to keep healthy between polls, and a plain ``http://127.0.0.1:PORT`` endpoint is enough for
    the tests' local fake. ``options.api_endpoint`` sends *every* request there (Vertex AI,
    Cloud Logging, Artifact Registry, Resource Manager), so one fake stands in for them all.

    Args:
        options: ``[deploy.vertex]``.
        chain: the credential chain (built from ``options.credentials_file`` when not given).
    """

    def __init__(self, options: VertexOptions, chain: CredentialChain | None = None):
        self.options = options
        self.chain = chain or CredentialChain(options.credentials_file)
        self._clients: dict[str, Any] = {}
        self._session: Any = None
        self._lock = threading.Lock()

    # --- where requests go ------------------------------------------------------------------
    @property
    def region(self) -> str:
        return str(self.options.region)

    @property
    def project(self) -> str:
        """``[deploy.vertex] project``, else the credentials' project, else a one-line error."""
        if self.options.project:
            return str(self.options.project)
        project = self.chain.identity().project or os.environ.get("GOOGLE_CLOUD_PROJECT")
        if not project:
            from mldock.errors import MldockError

            raise MldockError("no Google Cloud project: deploy.vertex.project is not set and the"
                              " credentials name none",
                              hint='set [deploy.vertex] project = "<project-id>" in mldock.toml'
                                   " (or GOOGLE_CLOUD_PROJECT)", exit_code=2)
        return str(project)

    @property
    def parent(self) -> str:
        """``projects/<project>/locations/<region>``: the parent of every Vertex resource."""
        return f"projects/{self.project}/locations/{self.region}"

    @property
    def api_endpoint(self) -> str:
        """The Vertex AI endpoint: ``options.api_endpoint``, else the regional one."""
        if self.options.api_endpoint:
            return str(self.options.api_endpoint).rstrip("/")
        return f"{self.region}-aiplatform.googleapis.com"

    def rest_base(self, service: str) -> str:
        """The base URL of a REST API of :data:`REST_HOSTS` (the override when one is set)."""
        if self.options.api_endpoint:
            return str(self.options.api_endpoint).rstrip("/")
        return REST_HOSTS[service]

    # --- clients ----------------------------------------------------------------------------
    def service(self, kind: str) -> Any:
        """The GAPIC client of ``kind`` (one of :data:`SERVICES`), built once."""
        with self._lock:
            found = self._clients.get(kind)
            if found is None:
                found = self._build(kind)
                self._clients[kind] = found
            return found

    def _build(self, kind: str) -> Any:
        from importlib import import_module

        from google.api_core.client_options import ClientOptions

        module, _, name = SERVICES[kind].partition(".")
        cls = getattr(import_module(f"google.cloud.aiplatform_v1.services.{module}"), name)
        credentials = self.chain.identity().credentials
        with translated(f"create the Vertex AI {kind} client"):
            return cls(credentials=credentials, transport="rest",
                       client_options=ClientOptions(api_endpoint=self.api_endpoint))

    @property
    def jobs(self) -> Any:
        return self.service("job")

    @property
    def models(self) -> Any:
        return self.service("model")

    @property
    def endpoints(self) -> Any:
        return self.service("endpoint")

    @property
    def prediction(self) -> Any:
        return self.service("prediction")

    # --- plain REST -------------------------------------------------------------------------
    @property
    def session(self) -> Any:
        """An authorized ``requests`` session (tokens refreshed on 401), built once."""
        with self._lock:
            if self._session is None:
                from google.auth.transport.requests import AuthorizedSession

                self._session = AuthorizedSession(self.chain.identity().credentials)
            return self._session

    def call(self, method: str, service: str, path: str, *, action: str,
             resource: str | None = None, json: Any = None,
             params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One REST request (``path`` from ``/v1/…``); the answer's JSON, errors translated.

        ``action`` and ``resource`` word the one-line error (see :func:`translated`).
        """
        url = self.rest_base(service) + path
        with translated(action, resource=resource):
            response = self.session.request(method, url, json=json, params=params,
                                            timeout=REST_TIMEOUT)
            if response.status_code >= 400:
                from google.api_core.exceptions import from_http_response

                raise from_http_response(response)
            return dict(response.json()) if response.content else {}
