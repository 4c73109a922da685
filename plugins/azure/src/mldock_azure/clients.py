"""One credential chain for the package: ``DefaultAzureCredential``, or (storage only) a
connection string named through an environment variable.

The store, the registry push and the Azure ML deployer all start here, so ``mldock doctor``, a
push and a training job agree on who the caller is, and share one token cache (the Azure CLI
credential costs a subprocess per fresh token). Nothing is resolved before a command needs it:
building a backend never fails on missing credentials, and no ``azure.*`` module is imported
until then (``azure.identity`` alone costs ~0.2 s on every ``mldock --help`` otherwise).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from mldock.config.plugin_config import SecretRef
from mldock.errors import MldockError

from mldock_azure.errors import translated

MANAGEMENT_SCOPE = "https://management.azure.com/.default"
"""Azure Resource Manager (and the Entra ID → ACR refresh-token exchange)."""
STORAGE_SCOPE = "https://storage.azure.com/.default"
"""Azure Storage data plane (what the Blob SDK asks for itself)."""


class AzureIdentity:
    """The caller's Azure identity, resolved once on first use; thread-safe.

    Args:
        credential: an azure-core ``TokenCredential`` to use instead of the default chain (tests,
            or an application embedding mldock with its own credential).

    ``DefaultAzureCredential`` tries, in order: environment variables (a service principal),
    workload identity, managed identity, the Azure CLI / Developer CLI / PowerShell logins. An
    interactive browser login is never attempted: mldock runs in CI and containers.
    """

    def __init__(self, credential: Any | None = None) -> None:
        self._credential = credential
        self._lock = threading.Lock()

    @property
    def credential(self) -> Any:
        """The ``TokenCredential`` (built lazily; cheap: it asks for nothing until a token is
        needed)."""
        with self._lock:
            if self._credential is None:
                with translated("set up the Azure credential chain"):
                    from azure.identity import DefaultAzureCredential

                    self._credential = DefaultAzureCredential(
                        exclude_interactive_browser_credential=True)
            return self._credential

    def access_token(self, scope: str = MANAGEMENT_SCOPE) -> str:
        """A bearer token for ``scope`` (e.g. :data:`MANAGEMENT_SCOPE` for ARM and the ACR
        exchange); absent or refused credentials raise a one-line MldockError."""
        with translated(f"get an Azure access token for {scope}"):
            token = self.credential.get_token(scope)
        return str(token.token)

    def source(self) -> str:
        """Which credential answered last (``AzureCliCredential``, ``ManagedIdentityCredential``,
        …), for ``mldock doctor``; never the token itself."""
        credential = self.credential
        # DefaultAzureCredential remembers the chain member that produced a token in a private
        # attribute; reading it is best-effort and only for display.
        chosen = getattr(credential, "_successful_credential", None)
        return type(chosen or credential).__name__


@functools.cache
def shared_identity() -> AzureIdentity:
    """The package's one :class:`AzureIdentity` (so the store and the deployer share tokens)."""
    return AzureIdentity()


def read_connection_string(ref: SecretRef) -> str:
    """The connection string held by the variable ``ref`` names, checked for the parts a Blob
    client needs; the value itself is never put into a message."""
    value = (ref.value() or "").strip()
    parts = {}
    for item in value.split(";"):
        name, sep, text = item.partition("=")
        if sep and name.strip():
            parts[name.strip().lower()] = text.strip()
    if not parts or not ("accountname" in parts or "blobendpoint" in parts):
        raise MldockError(f"the connection string in {ref.variable} is malformed: it names no"
                          " AccountName or BlobEndpoint",
                          hint="copy it from the portal (Access keys) or 'az storage account"
                               " show-connection-string', or unset connection_string to use"
                               " your Azure login (DefaultAzureCredential)")
    return value


# --- Azure ML clients (MLClient construction) go below ---------------------------------------
