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
from typing import Any

from mldock.config.plugin_config import SecretRef

from mldock_gcp.errors import translated

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
