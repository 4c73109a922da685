"""One Blob service client per store, built from ``[storage.azblob]`` and the package's identity.

Two ways in, decided by the options: a connection string read from the variable
``connection_string = "env:NAME"`` names (Azurite, SAS-only setups), or the account's endpoint
with the package's shared ``DefaultAzureCredential`` (:mod:`mldock_azure.clients`). The client's
HTTP pool is sized for ``max_concurrency`` parallel requests of two transfers at once, and its
single-request and block sizes follow ``block_mb``, so the SDK's own transfers (ranged downloads)
cut files the way mldock's uploads do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mldock.errors import UsageError

from mldock_azure import __version__
from mldock_azure.clients import AzureIdentity, read_connection_string, shared_identity
from mldock_azure.config import BlobOptions
from mldock_azure.errors import STORAGE_ROLE, translated
from mldock_azure.location import BlobLocation

CONNECT_TIMEOUT = 10
READ_TIMEOUT = 120
ACCOUNT_HINT = ('set [storage.azblob] account = "<storage account>", write the URI as'
                " az://<account>/<container>/… with account_in_uri = true, or name a connection"
                ' string (connection_string = "env:NAME")')


@dataclass
class BlobConnection:
    """The service and container clients of one store, and how they authenticate.

    The clients are thread-safe: transfers share them across their worker threads.
    """

    options: BlobOptions
    service: Any
    container: Any
    source: str
    identity: AzureIdentity | None = None

    @property
    def account_url(self) -> str:
        """The Blob endpoint (``https://<account>.blob.core.windows.net``, or Azurite's)."""
        return str(self.service.url).rstrip("/")

    @property
    def account(self) -> str:
        return str(self.service.account_name)

    def blob(self, name: str) -> Any:
        """The client of blob ``name`` in the store's container."""
        return self.container.get_blob_client(name)



def _transport(max_concurrency: int) -> Any:
    """A requests session whose pool keeps a connection per parallel request (azure-core's
    default pool holds 10, so 16 parallel blocks would open and close connections)."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    size = max(10, 2 * max_concurrency + 2)
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return RequestsTransport(session=session, session_owner=True)


def client_options(options: BlobOptions) -> dict[str, Any]:
    """Keyword arguments every Blob client of the store gets."""
    return {
        "transport": _transport(options.max_concurrency),
        "max_single_put_size": options.block_size,
        "max_block_size": options.block_size,
        "max_single_get_size": options.block_size,
        "max_chunk_get_size": options.block_size,
        "connection_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        "user_agent": f"mldock-azure/{__version__}",
    }


def account_name(options: BlobOptions, location: BlobLocation) -> str | None:
    """The account the URI or the options name (they must agree when both do)."""
    if location.account and options.account and location.account != options.account:
        raise UsageError(f"the URI {location.uri} names account {location.account!r} but"
                         f" [storage.azblob] account is {options.account!r}",
                         hint="drop one of them, or make them agree")
    return location.account or options.account


def connect(options: BlobOptions | None, location: BlobLocation, *,
            identity: AzureIdentity | None = None) -> BlobConnection:
    """Build the clients (no request is made); configuration mistakes are one-line errors."""
    options = options or BlobOptions()
    account = account_name(options, location)
    kwargs = client_options(options)
    with translated("set up the Azure Blob client", resource=location.uri, role=STORAGE_ROLE):
        from azure.storage.blob import BlobServiceClient

        if options.connection_string is not None:
            text = read_connection_string(options.connection_string)
            try:
                service = BlobServiceClient.from_connection_string(text, **kwargs)
            except ValueError:  # the SDK's message may quote the string: never show it
                raise UsageError(f"the connection string in {options.connection_string.variable}"
                                 " is malformed", hint="copy it again from the portal (Access"
                                 " keys)") from None
            if account and service.account_name != account:
                raise UsageError(f"the connection string in {options.connection_string.variable}"
                                 f" is for account {service.account_name!r}, not {account!r}",
                                 hint="fix [storage.azblob] account or the URI")
            source = f"connection string from {options.connection_string.variable}"
            identity = None
        else:
            if not account:
                raise UsageError(f"no storage account for {location.uri}", hint=ACCOUNT_HINT,
                                 exit_code=2)
            url = options.account_url or f"https://{account}.blob.core.windows.net"
            identity = identity or shared_identity()
            service = BlobServiceClient(url, credential=identity.credential, **kwargs)
            source = "Azure login (DefaultAzureCredential)"
        container = service.get_container_client(location.container)
    return BlobConnection(options, service, container, source, identity)
