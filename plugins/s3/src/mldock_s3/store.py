"""The ``s3://`` artifact store: :mod:`mldock.cas`'s layout in a bucket.

Layout under ``s3://bucket/prefix/`` (the local store's, so either can be copied onto the other)::

    blobs/sha256/ab/cdef…       file contents and tree manifests, named by their SHA-256
    refs/<key>/.mldock-ref      {"sha256", "size", "kind", …}: what a key points at

Deduplication, publication order, verified fetches and error texts are
:class:`~mldock.cas.ContentAddressedStore`'s. This class supplies S3's primitives, in parallel where
S3 allows (:mod:`mldock_s3.transfer`): an S3 object appears whole or not at all (a multipart upload
is invisible until completed), so writing blobs, then the manifest, then the reference keeps every
artifact atomic. Re-pushing an unchanged tree costs one HEAD and one PUT; changing one file costs
about that file. It also fetches plain objects for data channels and stages data for remote jobs.
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

from mldock_s3.client import S3Connection, connect
from mldock_s3.config import S3Options
from mldock_s3.errors import describe
from mldock_s3.location import S3Location
from mldock_s3.transfer import BlobMover, Stats


class S3ArtifactStore(ContentAddressedStore):
    """Artifacts under ``s3://bucket/prefix`` (see the module docstring for the guarantees).

    Args:
        uri: ``s3://bucket`` or ``s3://bucket/prefix``.
        options: ``[storage.s3]``; ``None`` uses boto3's defaults and the AWS chain.

    The boto3 client is created on first use, so building a store (e.g. to print its URI) costs
    nothing and fails on nothing.
    """

    stats: Stats

    def __init__(self, uri: str, options: S3Options | None = None):
        self.location = S3Location.parse(uri)
        self.uri = self.location.uri
        self.options = options or S3Options()
        self.stats = Stats()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3ArtifactStore({self.uri!r})"

    @cached_property
    def connection(self) -> S3Connection:
        with self._lock:
            return connect(self.options, bucket=self.location.bucket)

    @cached_property
    def blobs(self) -> BlobMover:
        return BlobMover(self.connection, self.location, self.stats)

    # --- names --------------------------------------------------------------------------------
    def ref_key(self, key: str) -> str:
        """The object key of ``key``'s reference."""
        return self.location.key(ref_name(key))

    def blob_key(self, digest: str) -> str:
        """The object key of the blob ``digest`` (for tools and tests)."""
        return self.location.key(blob_name(digest))

    def ref_location(self, key: str) -> str:
        return f"s3://{self.location.bucket}/{self.ref_key(key)}"

    @contextlib.contextmanager
    def guard(self, action: str, where: Path | None = None) -> Iterator[None]:
        """botocore, s3transfer and file-system errors as one-line MldockErrors."""
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
        """Files through the transfer manager in parallel; in-memory content (a manifest) in one
        checksummed PUT."""
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
            pages = self.connection.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=refs + prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    key = key_of_ref(obj["Key"][len(refs):])
                    if key is not None:
                        keys.append(key)
        return keys

    def delete_ref(self, key: str) -> None:
        with self.blobs.errors(f"delete {key!r}", f"refs/{key}"):
            self.connection.client.delete_object(Bucket=self.location.bucket,
                                                 Key=self.ref_key(key))

    # --- data channels --------------------------------------------------------------------------
    def fetch(self, uri: str, dest: Path, *, progress: ProgressSink = null_progress) -> Path:
        """Download the object or prefix at ``uri`` (any bucket) into the folder ``dest``."""
        from mldock_s3.fetch import fetch

        return fetch(self.connection, uri, Path(dest), progress=progress)

    def stage_data(self, folder: Path, digest: str, *,
                   progress: ProgressSink = null_progress) -> str:
        """Upload a data folder as plain objects under ``data/<digest>/`` (once) for remote jobs."""
        from mldock_s3.staging import stage_folder

        return stage_folder(self, Path(folder), digest, progress=progress)

    # --- doctor ---------------------------------------------------------------------------------
    def check(self) -> list[HealthCheck]:
        """Credentials present, bucket reachable, prefix writable (a probe put and deleted)."""
        bucket = self.location.bucket
        try:
            conn = self.connection
            source = conn.credential_source()
        except Exception as exc:  # noqa: BLE001 - SSO, credential_process, profile errors
            error = describe(exc, action="find AWS credentials", bucket=bucket)
            return [HealthCheck("S3 credentials", False, error.message, error.hint or "")]
        if source is None:
            return [HealthCheck("S3 credentials", False, f"no AWS credentials found for {self.uri}",
                                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE,"
                                " or run 'aws sso login'")]
        checks = [HealthCheck("S3 credentials", True, f"found ({source})")]
        probe = self.location.key("tmp", f"check-{uuid.uuid4().hex}")
        steps = (
            ("S3 bucket", lambda: conn.client.head_bucket(Bucket=bucket),
             f"s3://{bucket} reachable at {conn.endpoint}"),
            ("S3 artifact store", lambda: (
                conn.client.put_object(Bucket=bucket, Key=probe, Body=b"ok"),
                conn.client.delete_object(Bucket=bucket, Key=probe)),
             f"{self.uri} is writable"),
        )
        for name, call, detail in steps:
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - every failure becomes a failed check
                error = describe(exc, action="check the store", bucket=bucket,
                                 key=probe if name == "S3 artifact store" else None,
                                 endpoint=conn.endpoint)
                checks.append(HealthCheck(name, False, error.message, error.hint or ""))
                break
            checks.append(HealthCheck(name, True, detail))
        return checks

