"""Moving content-addressed blobs between local files and S3, in parallel.

The base store (:class:`mldock.cas.ContentAddressedStore`) decides what to send and verifies what
arrives; this module makes the requests:

* **Uploads** go through s3transfer's TransferManager: small blobs in one PUT, big ones in parallel
  parts (``[storage.s3] multipart_*``), all files of a tree sharing ``max_concurrency`` requests.
  A single-request upload carries ``ChecksumSHA256`` (the blob's own name), so AWS S3 refuses bytes
  that do not match it; a multipart one is checked by re-reading the source's size and mtime after
  the upload, and the blob is withdrawn if the file changed meanwhile.
* **Existence checks** are sorted LIST pages for many blobs, HEAD requests ``max_concurrency`` at
  a time for the rest.
* **Downloads** of small blobs stream through the base's hashing writer (one GET); big ones are
  fetched in parallel ranges by s3transfer into the base's staging file and hashed after.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from boto3.s3.transfer import create_transfer_manager
from botocore.exceptions import ClientError
from mldock.cas import (
    CHUNK_SIZE,
    BlobDownload,
    BlobMissingError,
    BlobSource,
    StoreStats,
    TransferProgress,
    blob_name,
)
from mldock.cas.layout import changed

from mldock_s3.client import S3Connection
from mldock_s3.errors import is_missing, translated
from mldock_s3.location import S3Location
from mldock_s3.progress import subscriber

BAD_DIGEST_CODES = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}
LIST_FROM = 16
"""From this many unknown blobs on, existence is first settled by listing instead of HEADs."""
LIST_WORTH = 12
"""A listing page must settle at least this many keys to go on listing (AWS prices a LIST like
about 12 HEADs)."""


@dataclass
class Stats(StoreStats):
    """The base counters, plus the requests that existence checks cost."""

    requests_head: int = 0
    requests_list: int = 0


def checksum_sha256(hex_digest: str) -> str:
    """The base64 form S3's ``x-amz-checksum-sha256`` header wants."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


class BlobMover:
    """Blob transfers for one store (``<prefix>/blobs/sha256/ab/cdef…``)."""

    list_page = 1000
    """Keys per LIST request (S3's maximum; tests lower it to exercise several pages)."""

    def __init__(self, conn: S3Connection, location: S3Location, stats: Stats):
        self.conn = conn
        self.location = location
        self.stats = stats
        self._lock = threading.Lock()

    # --- naming and counting --------------------------------------------------------------------
    def blob_key(self, digest: str) -> str:
        """The object key of a blob: :func:`mldock.cas.blob_name` under the prefix."""
        return self.location.key(blob_name(digest))

    def count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def errors(self, action: str, key: str | None = None
               ) -> contextlib.AbstractContextManager[None]:
        return translated(action, bucket=self.location.bucket,
                          key=self.location.key(key) if key else self.location.prefix or None,
                          endpoint=self.conn.endpoint)

    def _pool(self, jobs: int) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=max(1, min(self.conn.options.max_concurrency, jobs)),
                                  thread_name_prefix="mldock-s3")

    # --- existence --------------------------------------------------------------------------------
    def has_blob(self, digest: str, size: int) -> bool:
        """HEAD the blob: present with the right size. A wrong size is treated as absent."""
        self.count(requests_head=1)
        try:
            head = self.conn.client.head_object(Bucket=self.location.bucket,
                                                Key=self.blob_key(digest))
        except ClientError as exc:
            if is_missing(exc):
                return False
            raise
        return int(head.get("ContentLength", -1)) == size

    def missing(self, sources: list[BlobSource]) -> list[BlobSource]:
        """The sources (one per digest) whose blob is not stored yet.

        Many are first looked up by listing (see :meth:`_decide_by_listing`); what a listing
        cannot settle cheaply is checked with HEAD requests, in parallel.
        """
        unique = {source.sha256: source for source in sources}
        present: set[str] = set()
        decided: set[str] = set()
        if len(unique) >= LIST_FROM:
            present, decided = self._decide_by_listing(unique)
        rest = [s for d, s in unique.items() if d not in decided]
        if rest:
            with self._pool(len(rest)) as pool:
                found = pool.map(lambda s: self.has_blob(s.sha256, s.size), rest)
                present.update(s.sha256 for s, here in zip(rest, found, strict=True) if here)
        return [s for d, s in unique.items() if d not in present]

    def _decide_by_listing(self, unique: dict[str, BlobSource]) -> tuple[set[str], set[str]]:
        """Which of many blobs exist, from sorted listings that seek to each unknown key.

        One LIST answers for every wanted key up to the last key it returns: a fresh or small
        store is settled in one request, where HEADs would take one per file. A listing that
        settles few keys (a big store, keys spread thin) stops; HEAD requests take over, so this
        never costs more than a few requests above the HEADs alone. A store that may not be
        listed (a write-only role) also falls back to HEAD. Returns (present, decided).
        """
        wanted = sorted((self.blob_key(d), d) for d in unique)
        prefix = self.location.key("blobs", "sha256") + "/"
        present: set[str] = set()
        decided: set[str] = set()
        i = 0
        while i < len(wanted):
            self.count(requests_list=1)
            try:
                page = self.conn.client.list_objects_v2(
                    Bucket=self.location.bucket, Prefix=prefix, StartAfter=wanted[i][0][:-1],
                    MaxKeys=self.list_page)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("AccessDenied", "403"):
                    return present, decided
                raise
            sizes = {obj["Key"]: int(obj["Size"]) for obj in page.get("Contents", [])}
            last = max(sizes) if page.get("IsTruncated") else None
            start = i
            while i < len(wanted) and (last is None or wanted[i][0] <= last):
                key, digest = wanted[i]
                decided.add(digest)
                if sizes.get(key) == unique[digest].size:
                    present.add(digest)
                i += 1
            if i - start < LIST_WORTH:
                break
        return present, decided

    # --- upload -----------------------------------------------------------------------------------
    def upload(self, sources: list[BlobSource], *, progress: TransferProgress) -> None:
        """Store every file source as its blob; raise if one changed since it was hashed."""
        if not sources:
            return
        config = self.conn.transfer_config()
        with create_transfer_manager(self.conn.client, config) as manager:
            futures = []
            for source in sources:
                extra: dict[str, Any] = {"ContentType": "application/octet-stream"}
                if source.size < config.multipart_threshold and self.conn.sends_checksums:
                    extra["ChecksumSHA256"] = checksum_sha256(source.sha256)
                future = manager.upload(str(source.path), self.location.bucket,
                                        self.blob_key(source.sha256), extra_args=extra,
                                        subscribers=[subscriber(progress)])
                futures.append((source, future))
            for source, future in futures:
                try:
                    future.result()
                except ClientError as exc:
                    code = exc.response.get("Error", {}).get("Code")
                    if code in BAD_DIGEST_CODES:
                        raise changed(source.label) from exc
                    raise
                if not source.unchanged():
                    self._withdraw(source)
                    raise changed(source.label)

    def _withdraw(self, source: BlobSource) -> None:
        with contextlib.suppress(Exception):
            self.conn.client.delete_object(Bucket=self.location.bucket,
                                           Key=self.blob_key(source.sha256))

    def put_bytes(self, key: str, data: bytes, *, content_type: str, action: str) -> None:
        """One small object (a manifest or a reference) in a single, checksummed PUT."""
        extra: dict[str, Any] = {}
        if self.conn.sends_checksums:
            extra["ChecksumSHA256"] = base64.b64encode(hashlib.sha256(data).digest()).decode()
        with self.errors(action):
            self.conn.client.put_object(Bucket=self.location.bucket, Key=key, Body=data,
                                        ContentType=content_type, **extra)

    def get_bytes(self, key: str, *, action: str) -> bytes | None:
        """A small object's bytes, or None when it does not exist (a missing bucket raises)."""
        with self.errors(action):
            try:
                response = self.conn.client.get_object(Bucket=self.location.bucket, Key=key)
            except ClientError as exc:
                if is_missing(exc):
                    return None
                raise
            with contextlib.closing(response["Body"]) as body:
                return body.read()

    # --- download ---------------------------------------------------------------------------------
    def download(self, downloads: list[BlobDownload], *, progress: TransferProgress) -> None:
        """Fetch blobs into their staging files, in parallel; the base store verifies them.

        A blob that is gone raises :class:`~mldock.cas.BlobMissingError`.
        """
        if not downloads:
            return
        config = self.conn.transfer_config()
        small = [d for d in downloads if d.size < config.multipart_threshold]
        large = [d for d in downloads if d.size >= config.multipart_threshold]
        if small:
            with self._pool(len(small)) as pool:
                futures = [pool.submit(self._get_small, item, progress) for item in small]
                try:
                    for future in as_completed(futures):
                        future.result()
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
        if large:
            ranged = self.conn.transfer_config(self.conn.range_size(max(d.size for d in large)))
            self._get_large(large, ranged, progress)

    def _get_small(self, download: BlobDownload, progress: TransferProgress) -> None:
        """One GET, hashed while it streams into the staging file."""
        try:
            response = self.conn.client.get_object(Bucket=self.location.bucket,
                                                   Key=self.blob_key(download.sha256))
        except ClientError as exc:
            if is_missing(exc):
                raise BlobMissingError(download.sha256) from None
            raise
        with contextlib.closing(response["Body"]) as body, download.open() as handle:
            for chunk in iter(lambda: body.read(CHUNK_SIZE), b""):
                handle.write(chunk)
                progress.add(len(chunk))

    def _get_large(self, downloads: list[BlobDownload], config: Any,
                   progress: TransferProgress) -> None:
        """Parallel ranged GETs by s3transfer, each into its staging file (by name)."""
        from s3transfer.subscribers import BaseSubscriber

        class _Size(BaseSubscriber):
            def __init__(self, size: int):
                self.size = size

            def on_queued(self, future: Any, **kwargs: Any) -> None:
                future.meta.provide_transfer_size(self.size)

        with create_transfer_manager(self.conn.client, config) as manager:
            pending = [(d, manager.download(self.location.bucket, self.blob_key(d.sha256),
                                            str(d.temp),
                                            subscribers=[_Size(d.size), subscriber(progress)]))
                       for d in downloads]
            for download, future in pending:
                try:
                    future.result()
                except ClientError as exc:
                    if is_missing(exc):
                        raise BlobMissingError(download.sha256) from None
                    raise
