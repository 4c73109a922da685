"""One google-cloud-storage client per store, built from ``[storage.gcs]`` on the package's
credential chain (:class:`mldock_gcp.clients.CredentialChain`).

Where requests go: ``endpoint_url``, else ``STORAGE_EMULATOR_HOST`` (an emulator), else Google.
Requests to an emulator, or to any plain ``http://`` endpoint, are sent without credentials: a
bearer token must never travel unencrypted, and emulators accept anything. Every request has a
connect/read timeout and retries transient failures with backoff for at most ``RETRY_SECONDS``,
so an unreachable endpoint fails in seconds rather than after the library's two minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mldock_gcp import __version__
from mldock_gcp.clients import CredentialChain, GoogleIdentity, emulator_host
from mldock_gcp.config import MB, GcsOptions

GOOGLE_ENDPOINT = "https://storage.googleapis.com"
TIMEOUT = (10, 120)  # seconds: connect, read (per request, not per transfer)
RETRY_SECONDS = 30.0
MAX_RANGE = 256 * MB
COMPOSE_LIMIT = 32  # Cloud Storage composes at most 32 objects in one request


@dataclass
class GcsConnection:
    """A storage client and the options it was built from; thread-safe.

    Its HTTP session keeps a connection pool large enough for ``max_concurrency`` transfers plus
    the existence checks that overlap them.
    """

    options: GcsOptions
    client: Any
    identity: GoogleIdentity
    endpoint: str
    retry: Any
    session: Any  # the authorized requests session the client uses (streamed uploads)

    def bucket(self, name: str) -> Any:
        """A bucket handle; requests are billed to ``[storage.gcs] project`` when set
        (requester-pays buckets)."""
        return self.client.bucket(name, user_project=self.options.project)

    @property
    def chunk_size(self) -> int:
        return self.options.chunk_size

    def parallel_download(self, size: int) -> bool:
        """Whether ``size`` bytes are fetched in parallel ranges (at least two whole chunks)."""
        return size >= 2 * self.chunk_size and self.options.max_concurrency > 1

    def parallel_upload(self, size: int) -> bool:
        """Whether ``size`` bytes go as a parallel composite upload (``parallel_upload_mb``)."""
        wanted = self.options.parallel_upload_mb
        return (wanted is not None and size >= max(wanted * MB, 2 * self.chunk_size)
                and self.options.max_concurrency > 1)

    def streamed(self, size: int) -> bool:
        """Whether ``size`` bytes are sent streamed from disk rather than read into memory."""
        return size >= self.chunk_size

    def part_size(self, size: int, *, limit: int = MAX_RANGE) -> int:
        """Bytes per part or range when moving ``size`` bytes in parallel.

        The object is cut into ``max_concurrency`` parts, so every connection is busy with one
        request and no more requests are made than that (each costs a round trip and, on
        servers that read the whole object to answer a range, a whole read); never smaller
        than ``chunk_mb``, and a multiple of 256 KiB as resumable uploads require.
        """
        share = -(-size // self.options.max_concurrency)
        quantum = 256 * 1024
        share = -(-share // quantum) * quantum
        return max(self.chunk_size, min(share, limit))


def anonymous_endpoint(options: GcsOptions) -> tuple[str, bool]:
    """Where requests go, and whether they go without credentials."""
    if options.endpoint_url:
        endpoint = str(options.endpoint_url).rstrip("/")
        return endpoint, options.anonymous or endpoint.startswith("http://")
    emulator = emulator_host()
    if emulator:
        return emulator.rstrip("/"), True
    return GOOGLE_ENDPOINT, options.anonymous


def connect(options: GcsOptions | None) -> GcsConnection:
    """Build the client (credentials resolved now: a missing one is a one-line error)."""
    from google.api_core.client_info import ClientInfo
    from google.auth.transport.requests import AuthorizedSession
    from google.cloud import storage
    from requests.adapters import HTTPAdapter

    options = options or GcsOptions()
    endpoint, anonymous = anonymous_endpoint(options)
    identity = CredentialChain(options.credentials_file, anonymous=anonymous).identity()
    session = AuthorizedSession(identity.credentials)
    pool = max(10, 2 * options.max_concurrency + 2)
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    client_options: dict[str, Any] = {}
    if endpoint != GOOGLE_ENDPOINT:
        client_options["api_endpoint"] = endpoint
    client = storage.Client(
        project=options.project or identity.project, credentials=identity.credentials,
        _http=session, client_options=client_options or None,
        client_info=ClientInfo(user_agent=f"mldock-gcp/{__version__}"))
    return GcsConnection(options=options, client=client, identity=identity, endpoint=endpoint,
                         retry=transient_retry(), session=session)


def transient_retry() -> Any:
    """Retry what Cloud Storage documents as transient (429, 5xx, dropped connections) with
    exponential backoff, for at most ``RETRY_SECONDS`` in all. A refused connection is not
    retried: nothing listens there (a wrong endpoint, a stopped emulator), and waiting half a
    minute would only delay the one-line error."""
    import requests
    from google.api_core import exceptions as gax
    from google.api_core import retry
    from google.auth import exceptions as gauth

    transient = (gax.TooManyRequests, gax.InternalServerError, gax.BadGateway,
                 gax.ServiceUnavailable, gax.GatewayTimeout, gauth.TransportError,
                 requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                 requests.Timeout, ConnectionError)

    def worth_retrying(exc: BaseException) -> bool:
        return isinstance(exc, transient) and not refused(exc)

    return retry.Retry(predicate=worth_retrying, initial=0.5, maximum=8.0, multiplier=2.0,
                       timeout=RETRY_SECONDS)


def refused(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a refused TCP connection."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError) or "Connection refused" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
