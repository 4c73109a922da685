"""The ``az://`` artifact store: :mod:`mldock.cas`'s layout in an Azure Blob container.

Layout under ``az://container/prefix/`` (the local store's, so either can be copied onto the
other)::

    blobs/sha256/ab/cdef…       file contents and tree manifests, named by their SHA-256
    refs/<key>/.mldock-ref      {"sha256", "size", "kind", …}: what a key points at

Deduplication, publication order, verified fetches and error texts are
:class:`~mldock.cas.ContentAddressedStore`'s. This class supplies Blob Storage's primitives, in
parallel (:mod:`mldock_azure.transfer`): a block blob appears whole or not at all (staged blocks
are invisible until their list is committed), so writing blobs, then the manifest, then the
reference keeps every artifact atomic. Re-pushing an unchanged tree costs one HEAD and one PUT.
It also fetches plain blobs for data channels (:mod:`mldock_azure.fetch`) and stages data for
remote jobs (:mod:`mldock_azure.staging`), giving Azure ML the HTTPS URL it mounts.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from urllib.parse import quote

from mldock.cas import (
    BlobDownload,
    BlobSource,
    ContentAddressedStore,
    TransferProgress,
    blob_name,
    ref_name,
)
from mldock.cas.layout import key_of_ref
from mldock.interfaces import HealthCheck, ProgressSink, null_progress

from mldock_azure.clients import STORAGE_SCOPE
from mldock_azure.config import BlobOptions
from mldock_azure.connection import BlobConnection, connect
from mldock_azure.errors import STORAGE_ROLE, describe, is_missing
from mldock_azure.location import BlobLocation
from mldock_azure.transfer import BlobMover, Stats


class BlobArtifactStore(ContentAddressedStore):
    """Artifacts under ``az://container/prefix`` (see the module docstring for the guarantees).

    Args:
        uri: ``az://container`` or ``az://container/prefix`` (``az://account/container/…`` with
            ``account_in_uri``).
        options: ``[storage.azblob]``; ``None`` means the defaults (the account must then come
            from the URI).

    The Blob client is created on first use, so building a store (e.g. to print its URI) costs
    nothing and fails on nothing but a malformed URI.
    """

    stats: Stats

    def __init__(self, uri: str, options: BlobOptions | None = None):
        self.options = options or BlobOptions()
        self.location = BlobLocation.parse(uri, account_in_uri=self.options.account_in_uri)
        self.uri = self.location.uri
        self.stats = Stats()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BlobArtifactStore({self.uri!r})"

    @cached_property
    def connection(self) -> BlobConnection:
        with self._lock:
            return connect(self.options, self.location)

    @cached_property
    def blobs(self) -> BlobMover:
        return BlobMover(self.connection, self.location, self.stats)

    # --- names --------------------------------------------------------------------------------
    def ref_key(self, key: str) -> str:
        """The blob name of ``key``'s reference."""
        return self.location.key(ref_name(key))

    def blob_key(self, digest: str) -> str:
        """The blob name of the content blob ``digest`` (for tools and tests)."""
        return self.location.key(blob_name(digest))

    def ref_location(self, key: str) -> str:
        return self.location.child(ref_name(key)).uri

    def https_url(self, uri: str) -> str:
        """The ``https://<account>.blob.core.windows.net/<container>/<path>`` URL of an ``az://``
        URI in this store's account (a staged data folder, for an Azure ML ``uri_folder``
        input); a trailing ``/`` is kept."""
        target = BlobLocation.parse(uri, account_in_uri=self.options.account_in_uri)
        url = f"{self.connection.account_url}/{target.container}"
        if target.prefix:
            url = f"{url}/{quote(target.prefix)}{'/' if uri.endswith('/') else ''}"
        return url

    @contextlib.contextmanager
    def guard(self, action: str, where: Path | None = None) -> Iterator[None]:
        """Azure and file-system errors as one-line MldockErrors."""
        with self.blobs.errors(action):
            yield

    # --- blob primitives ----------------------------------------------------------------------
    def has_blob(self, digest: str, size: int) -> bool:
        return self.blobs.has_blob(digest, size)

    def missing_blobs(self, sources: list[BlobSource]) -> list[BlobSource]:
        return self.blobs.missing(sources)

    def put_blob(self, source: BlobSource, meter: TransferProgress) -> None:
        self.put_blobs([source], meter)

    def put_blobs(self, sources: list[BlobSource], meter: TransferProgress) -> None:
        """Files in parallel (blocks for big ones); in-memory content (a manifest) in one PUT."""
        self.blobs.upload([s for s in sources if s.data is None], progress=meter)
        for source in sources:
            if source.data is not None:
                self.blobs.put_bytes(self.blob_key(source.sha256), source.data,
                                     content_type="application/json", action="store a manifest")

    def get_blob(self, download: BlobDownload, meter: TransferProgress) -> None:
        self.get_blobs([download], meter)

    def get_blobs(self, downloads: list[BlobDownload], meter: TransferProgress) -> None:
        self.blobs.download(downloads, progress=meter)

    def get_small_blob(self, digest: str) -> bytes | None:
        return self.blobs.get_bytes(self.blob_key(digest), action="read a manifest")

    # --- reference primitives -----------------------------------------------------------------
    def put_ref(self, key: str, data: bytes) -> None:
        self.blobs.put_bytes(self.ref_key(key), data, content_type="application/json",
                             action=f"publish {key!r}")

    def get_ref(self, key: str) -> bytes | None:
        return self.blobs.get_bytes(self.ref_key(key), action=f"read {key!r}")

    def list_refs(self, prefix: str) -> list[str]:
        refs = self.location.key("refs") + "/"
        keys = []
        with self.blobs.errors("list artifacts", "refs"):
            for name in self.connection.container.list_blob_names(name_starts_with=refs + prefix):
                key = key_of_ref(name[len(refs):])
                if key is not None:
                    keys.append(key)
        return keys

    def delete_ref(self, key: str) -> None:
        with self.blobs.errors(f"delete {key!r}", ref_name(key)):
            try:
                self.connection.blob(self.ref_key(key)).delete_blob()
            except Exception as exc:
                if not is_missing(exc):
                    raise

    # --- data channels --------------------------------------------------------------------------
    def fetch(self, uri: str, dest: Path, *, progress: ProgressSink = null_progress) -> Path:
        """Download the blob or folder at ``uri`` (any container of the account) into ``dest``."""
        from mldock_azure.fetch import fetch

        return fetch(self, uri, Path(dest), progress=progress)

    def stage_data(self, folder: Path, digest: str, *,
                   progress: ProgressSink = null_progress) -> str:
        """Upload a data folder as plain blobs under ``data/<digest>/`` (once) for remote jobs."""
        from mldock_azure.staging import stage_folder

        return stage_folder(self, Path(folder), digest, progress=progress)

    # --- doctor ---------------------------------------------------------------------------------
    def check(self) -> list[HealthCheck]:
        """Credentials present, container reachable, prefix writable (a probe put and deleted)."""
        try:
            conn = self.connection
            if conn.identity is not None:
                conn.identity.access_token(STORAGE_SCOPE)
            source = conn.source if conn.identity is None else \
                f"{conn.source}: {conn.identity.source()}"
        except Exception as exc:  # noqa: BLE001 - every failure becomes a failed check
            error = describe(exc, action="find Azure credentials", role=STORAGE_ROLE)
            return [HealthCheck("Azure Blob credentials", False, error.message, error.hint or "")]
        checks = [HealthCheck("Azure Blob credentials", True, f"found ({source})")]
        probe = self.location.key("tmp", f"check-{uuid.uuid4().hex}")
        container_uri = f"az://{self.location.container}"
        steps = (
            ("Azure Blob container", conn.container.get_container_properties,
             f"{container_uri} reachable at {conn.account_url}", container_uri),
            ("Azure Blob artifact store", lambda: (
                conn.blob(probe).upload_blob(b"ok", overwrite=True),
                conn.blob(probe).delete_blob()),
             f"{self.uri} is writable", f"az://{self.location.container}/{probe}"),
        )
        for name, call, detail, resource in steps:
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - every failure becomes a failed check
                error = describe(exc, action="check the store", resource=resource,
                                 role=STORAGE_ROLE, endpoint=conn.account_url)
                checks.append(HealthCheck(name, False, error.message, error.hint or ""))
                break
            checks.append(HealthCheck(name, True, detail))
        return checks
