"""The ``gs://`` artifact store: :mod:`mldock.cas`'s layout in a Cloud Storage bucket.

Layout under ``gs://bucket/prefix/`` (the local store's, so either can be copied onto the other)::

    blobs/sha256/ab/cdef…       file contents and tree manifests, named by their SHA-256
    refs/<key>/.mldock-ref      {"sha256", "size", "kind", …}: what a key points at

Deduplication, publication order, verified fetches and error texts are
:class:`~mldock.cas.ContentAddressedStore`'s. This class supplies Cloud Storage's primitives, in
parallel where it pays (:mod:`mldock_gcp.transfer`). A Cloud Storage object appears whole or not at
all (a new generation replaces the old one atomically, a composed object appears on ``compose``),
so writing blobs, then the manifest, then the reference keeps every artifact atomic. Blobs are
created only if absent (``ifGenerationMatch=0``); references are written with ``Cache-Control:
no-store`` so a public bucket's edge caches never serve an old one. Re-pushing an unchanged tree
costs one lookup and one write. It also fetches plain objects for data channels and stages data for
remote jobs (Vertex AI reads them under ``/gcs/<bucket>/…``).
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

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

from mldock_gcp.config import GcsOptions
from mldock_gcp.connection import TIMEOUT, GcsConnection, connect
from mldock_gcp.errors import describe
from mldock_gcp.location import GcsLocation
from mldock_gcp.transfer import Mover, Stats

JSON = "application/json"
NO_STORE = "no-store"


class GcsArtifactStore(ContentAddressedStore):
    """Artifacts under ``gs://bucket/prefix`` (see the module docstring for the guarantees).

    Args:
        uri: ``gs://bucket`` or ``gs://bucket/prefix``.
        options: ``[storage.gcs]``; ``None`` uses Application Default Credentials.

    The client (and with it the credentials) is created on first use, so building a store (e.g. to
    print its URI) costs nothing and fails on nothing.
    """

    stats: Stats

    def __init__(self, uri: str, options: GcsOptions | None = None):
        self.location = GcsLocation.parse(uri)
        self.uri = self.location.uri
        self.options = options or GcsOptions()
        self.stats = Stats()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GcsArtifactStore({self.uri!r})"

    @cached_property
    def connection(self) -> GcsConnection:
        with self._lock:
            return connect(self.options)

    @cached_property
    def blobs(self) -> Mover:
        return Mover(self.connection, self.location, self.stats)

    # --- names --------------------------------------------------------------------------------
    def ref_key(self, key: str) -> str:
        """The object name of ``key``'s reference."""
        return self.location.key(ref_name(key))

    def blob_key(self, digest: str) -> str:
        """The object name of the blob ``digest`` (for tools and tests)."""
        return self.location.key(blob_name(digest))

    def ref_location(self, key: str) -> str:
        return self.location.object_uri(self.ref_key(key))

    @contextlib.contextmanager
    def guard(self, action: str, where: Path | None = None) -> Iterator[None]:
        """Google, transport and file-system errors as one-line MldockErrors; a 404 first asks
        whether the bucket itself is missing, so the message names the right thing."""
        from google.api_core import exceptions as gax

        with self.blobs.errors(action):
            try:
                yield
            except gax.NotFound:
                self.blobs.require_bucket(action)
                raise

    # --- blob primitives ----------------------------------------------------------------------
    def has_blob(self, digest: str, size: int) -> bool:
        return self.blobs.has_blob(digest, size)

    def missing_blobs(self, sources: list[BlobSource]) -> list[BlobSource]:
        return self.blobs.missing(sources)

    def put_blob(self, source: BlobSource, meter: TransferProgress) -> None:
        self.put_blobs([source], meter)

    def put_blobs(self, sources: list[BlobSource], meter: TransferProgress) -> None:
        """Files in parallel (big ones in parallel parts); in-memory content (a manifest) in
        one request."""
        self.blobs.upload_blobs([s for s in sources if s.data is None], meter)
        for source in sources:
            if source.data is not None:
                self.blobs.put_bytes(self.blob_key(source.sha256), source.data,
                                     content_type=JSON, exclusive=True)

    def get_blob(self, download: BlobDownload, meter: TransferProgress) -> None:
        self.get_blobs([download], meter)

    def get_blobs(self, downloads: list[BlobDownload], meter: TransferProgress) -> None:
        self.blobs.download_blobs(downloads, meter)

    def get_small_blob(self, digest: str) -> bytes | None:
        return self.blobs.get_bytes(self.blob_key(digest))

    # --- reference primitives -----------------------------------------------------------------
    def put_ref(self, key: str, data: bytes) -> None:
        self.blobs.put_bytes(self.ref_key(key), data, content_type=JSON, cache_control=NO_STORE)

    def get_ref(self, key: str) -> bytes | None:
        return self.blobs.get_bytes(self.ref_key(key))

    def list_refs(self, prefix: str) -> list[str]:
        refs = self.location.key("refs") + "/"
        conn = self.connection
        listing = conn.client.list_blobs(self.blobs.bucket, prefix=refs + prefix,
                                         timeout=TIMEOUT, retry=conn.retry)
        keys = (key_of_ref(blob.name[len(refs):]) for blob in listing)
        return [key for key in keys if key is not None]

    def delete_ref(self, key: str) -> None:
        """A missing reference is fine; a missing bucket is an error (the guard names it)."""
        from google.api_core import exceptions as gax

        try:
            self.blobs.bucket.blob(self.ref_key(key)).delete(timeout=TIMEOUT,
                                                            retry=self.connection.retry)
        except gax.NotFound:
            self.blobs.require_bucket(f"delete {key!r}")

    # --- data channels --------------------------------------------------------------------------
    def fetch(self, uri: str, dest: Path, *, progress: ProgressSink = null_progress) -> Path:
        """Download the object or prefix at ``uri`` (any bucket) into the folder ``dest``."""
        from mldock_gcp.fetch import fetch

        return fetch(self.connection, uri, Path(dest), progress=progress, stats=self.stats)

    def stage_data(self, folder: Path, digest: str, *,
                   progress: ProgressSink = null_progress) -> str:
        """Upload a data folder as plain objects under ``data/<digest>/`` (once) for remote jobs."""
        from mldock_gcp.staging import stage_folder

        return stage_folder(self, Path(folder), digest, progress=progress)

    # --- doctor ---------------------------------------------------------------------------------
    def check(self) -> list[HealthCheck]:
        """Credentials present, bucket reachable, prefix writable (a probe put and deleted)."""
        try:
            conn = self.connection
        except Exception as exc:  # noqa: BLE001 - every failure becomes a failed check
            error = describe(exc, action="find Google Cloud credentials")
            return [HealthCheck("GCS credentials", False, error.message, error.hint or "")]
        checks = [HealthCheck("GCS credentials", True, f"found ({conn.identity.source})")]
        probe = self.location.key("tmp", f"check-{uuid.uuid4().hex}")
        steps = (
            ("GCS bucket", lambda: list(conn.client.list_blobs(
                self.blobs.bucket, prefix=probe, max_results=1, timeout=TIMEOUT,
                retry=conn.retry)), f"gs://{self.location.bucket} reachable at {conn.endpoint}"),
            ("GCS artifact store", lambda: self._probe(probe), f"{self.uri} is writable"),
        )
        for name, call, detail in steps:  # each step needs the one before
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - every failure becomes a failed check
                resource = (self.location.object_uri(probe) if name == "GCS artifact store"
                            else f"gs://{self.location.bucket}")
                error = describe(exc, action="check the store", resource=resource)
                checks.append(HealthCheck(name, False, error.message, error.hint or ""))
                break
            checks.append(HealthCheck(name, True, detail))
        return checks

    def _probe(self, name: str) -> None:
        self.blobs.put_bytes(name, b"ok", content_type="text/plain")
        self.blobs.delete(name)
