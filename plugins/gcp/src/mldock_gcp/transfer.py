"""Moving objects between local files and Cloud Storage, in parallel, verified.

The base store (:class:`mldock.cas.ContentAddressedStore`) decides what to send and checks the
SHA-256 of what arrives; this module makes the requests, ``max_concurrency`` at a time:

* **Small objects** (below ``chunk_mb``) go in one request each. The bytes are read once, checked
  against the SHA-256 the base computed (a file that changed since cannot be stored under the old
  name), and sent with their CRC32C, which Cloud Storage checks before it keeps them.
* **Bigger objects** are streamed from disk in one resumable request each
  (:mod:`mldock_gcp.streaming`: flat memory, resumed where a dropped connection left off, the
  CRC32C of the bytes read compared with the stored object's). From ``parallel_upload_mb`` on
  (off by default; see :class:`~mldock_gcp.config.GcsOptions` for the costs) they are a
  *parallel composite upload*: ``max_concurrency`` parts sent at once as temporary objects,
  joined by one ``compose`` (an object appears whole or not at all) and deleted. Either way the
  source's size and mtime are compared afterwards; a file that changed meanwhile is withdrawn.
* Blobs are created with ``ifGenerationMatch=0``: a blob another writer stored first is left as
  it is (same name, same bytes), and is never rewritten; only a damaged one (wrong size) is
  replaced, pinned to the generation that was seen.
* **Downloads** of small objects stream through the caller's writer with the library's CRC32C
  check; big ones are fetched in ``max_concurrency`` parallel ranges, all pinned to the
  generation listed first (an object replaced mid-way fails instead of mixing versions).
* **Existence checks** list many blobs at once (one listing settles a fresh store), else look
  them up ``max_concurrency`` at a time.
"""

from __future__ import annotations

import contextlib
import io
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

from mldock.cas import (
    BlobDownload,
    BlobMissingError,
    BlobSource,
    StoreStats,
    TransferProgress,
    blob_name,
    sha256_bytes,
)
from mldock.cas.layout import changed

from mldock_gcp.connection import COMPOSE_LIMIT, TIMEOUT, GcsConnection
from mldock_gcp.errors import is_missing, translated
from mldock_gcp.location import GcsLocation
from mldock_gcp.streaming import FileSlice, fetch_range, media_url, stream_upload

T = TypeVar("T")
R = TypeVar("R")
LIST_FROM = 16
"""From this many unknown blobs on, existence is first settled by listing."""
LIST_WORTH = 12
"""A listing page must settle at least this many keys to go on listing."""
OCTET = "application/octet-stream"


@dataclass
class Stats(StoreStats):
    """The base counters, plus the requests existence checks and parallel parts cost."""

    requests_head: int = 0
    requests_list: int = 0
    parts_sent: int = 0
    ranges_fetched: int = 0


class MeteredWriter(io.RawIOBase):
    """A writer that reports every byte written to a progress meter."""

    def __init__(self, handle: BinaryIO, meter: TransferProgress):
        self.handle, self.meter = handle, meter

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.handle.write(data)
        self.meter.add(len(data))
        return len(data)


class Mover:
    """Object transfers for one location (a store's blobs, staged data, fetched channels)."""

    list_page = 1000
    """Names per listing request (tests lower it to exercise several pages)."""

    def __init__(self, conn: GcsConnection, location: GcsLocation, stats: Stats):
        self.conn = conn
        self.location = location
        self.stats = stats
        self.bucket = conn.bucket(location.bucket)
        self._lock = threading.Lock()
        self._bucket_seen = False

    # --- names, counting, errors --------------------------------------------------------------
    def blob_key(self, digest: str) -> str:
        return self.location.key(blob_name(digest))

    def count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def errors(self, action: str, name: str | None = None
               ) -> contextlib.AbstractContextManager[None]:
        resource = self.location.object_uri(name) if name else self.location.uri
        return translated(action, resource=resource)

    def pool_map(self, work: Callable[[T], R], items: list[T]) -> list[R]:
        """``work`` over ``items``, ``max_concurrency`` at a time; the first failure cancels
        what has not started and is raised."""
        if len(items) < 2:
            return [work(item) for item in items]
        workers = max(1, min(self.conn.options.max_concurrency, len(items)))
        with ThreadPoolExecutor(workers, thread_name_prefix="mldock-gcs") as pool:
            futures = [pool.submit(work, item) for item in items]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def require_bucket(self, action: str = "reach the bucket") -> None:
        """After a 404: make a missing bucket say so, rather than "no such object" (emulators
        answer a 404 with no text, Google with a text that differs by API)."""
        if self._bucket_seen:
            return
        with translated(action, resource=f"gs://{self.location.bucket}"):
            pages = self.conn.client.list_blobs(self.bucket, prefix=self.location.key("x"),
                                                max_results=1, timeout=TIMEOUT,
                                                retry=self.conn.retry)
            list(pages)  # a missing bucket raises NotFound
        self._bucket_seen = True

    # --- existence ------------------------------------------------------------------------------
    def size_of(self, name: str) -> tuple[int, int] | None:
        """(size, generation) of an object, or None when it does not exist."""
        self.count(requests_head=1)
        blob = self.bucket.get_blob(name, timeout=TIMEOUT, retry=self.conn.retry)
        return None if blob is None else (int(blob.size), int(blob.generation))

    def has_blob(self, digest: str, size: int) -> bool:
        found = self.size_of(self.blob_key(digest))
        return found is not None and found[0] == size

    def missing(self, sources: list[BlobSource]) -> list[BlobSource]:
        """The sources (one per digest) whose blob is not stored yet."""
        unique = {source.sha256: source for source in sources}
        present: set[str] = set()
        decided: set[str] = set()
        if len(unique) >= LIST_FROM:
            present, decided = self._decide_by_listing(unique)
        rest = [s for d, s in unique.items() if d not in decided]
        found = self.pool_map(lambda s: self.has_blob(s.sha256, s.size), rest)
        present.update(s.sha256 for s, here in zip(rest, found, strict=True) if here)
        return [s for d, s in unique.items() if d not in present]

    def _decide_by_listing(self, unique: dict[str, BlobSource]) -> tuple[set[str], set[str]]:
        """Which of many blobs exist, from sorted listings that start at each unknown name.

        One listing answers for every wanted name up to the last name it returns, so a fresh
        or small store is settled in one request; a listing that settles few names (a big
        store) stops and lookups take over. Returns (present, decided).
        """
        from google.api_core import exceptions as gax

        wanted = sorted((self.blob_key(d), d) for d in unique)
        prefix = self.location.key("blobs", "sha256") + "/"
        present: set[str] = set()
        decided: set[str] = set()
        i = 0
        while i < len(wanted):
            self.count(requests_list=1)
            listing = self.conn.client.list_blobs(
                self.bucket, prefix=prefix, start_offset=wanted[i][0],
                max_results=self.list_page, timeout=TIMEOUT, retry=self.conn.retry)
            try:
                sizes = {blob.name: int(blob.size) for blob in next(listing.pages)}
            except gax.Forbidden:  # may write but not list: look blobs up one by one
                return present, decided
            truncated = listing.next_page_token is not None
            last = max(sizes) if truncated and sizes else None
            start = i
            while i < len(wanted) and (last is None or wanted[i][0] <= last):
                name, digest = wanted[i]
                decided.add(digest)
                if sizes.get(name) == unique[digest].size:
                    present.add(digest)
                i += 1
            if i - start < LIST_WORTH:
                break
        return present, decided

    # --- upload ---------------------------------------------------------------------------------
    def upload_blobs(self, sources: list[BlobSource], meter: TransferProgress) -> None:
        """Store every file source as its blob, ``max_concurrency`` at a time; files for a
        parallel composite upload after them, one by one, each in parallel parts."""
        small = [s for s in sources if not self.conn.parallel_upload(s.size)]
        self.pool_map(lambda s: self._put_small_blob(s, meter), small)
        for source in sources:
            if self.conn.parallel_upload(source.size):
                self.upload_composite(source.open, source.size, self.blob_key(source.sha256),
                                      meter, exclusive=True)
                if not source.unchanged():
                    self.delete(self.blob_key(source.sha256))
                    raise changed(source.label)

    def _put_small_blob(self, source: BlobSource, meter: TransferProgress) -> None:
        if self.conn.streamed(source.size):  # not parallel, too big to hold: one stream
            self.send_stream(source.open, 0, source.size, self.blob_key(source.sha256), meter,
                             exclusive=True)
            if not source.unchanged():
                self.delete(self.blob_key(source.sha256))
                raise changed(source.label)
            return
        with source.open() as handle:
            data = handle.read()
        if sha256_bytes(data) != source.sha256 or len(data) != source.size:
            raise changed(source.label)
        self.put_bytes(self.blob_key(source.sha256), data, content_type=OCTET, exclusive=True)
        meter.add(len(data))

    def put_bytes(self, name: str, data: bytes, *, content_type: str, exclusive: bool = False,
                  cache_control: str | None = None) -> None:
        """One object in one request, CRC32C-checked by the service. ``exclusive``: only if
        absent (a blob: the same name holds the same bytes), replacing a damaged one."""
        blob = self.bucket.blob(name)
        if cache_control:
            blob.cache_control = cache_control
        self._create(blob, exclusive, len(data), lambda condition: blob.upload_from_string(
            data, content_type=content_type, if_generation_match=condition, timeout=TIMEOUT,
            retry=self.conn.retry))

    def _create(self, blob: Any, exclusive: bool, size: int, send: Callable[[Any], None]
                ) -> None:
        """``send(if_generation_match)``: once only-if-absent; a blob already there of another
        size (a damaged one) is replaced, pinned to the generation that was seen."""
        from google.api_core import exceptions as gax

        if not exclusive:
            send(None)
            return
        try:
            send(0)
        except gax.PreconditionFailed:
            found = self.size_of(blob.name)
            if found is not None and found[0] != size:
                send(found[1])

    def upload_file(self, opener: Callable[[], BinaryIO], size: int, name: str,
                    meter: TransferProgress) -> None:
        """A plain object (staged data): one request, one stream, or parallel parts."""
        if self.conn.parallel_upload(size):
            self.upload_composite(opener, size, name, meter, exclusive=False)
            return
        if self.conn.streamed(size):
            self.send_stream(opener, 0, size, name, meter, exclusive=False)
            return
        with opener() as handle:
            data = handle.read()
        self.put_bytes(name, data, content_type=OCTET)
        meter.add(len(data))

    def upload_composite(self, opener: Callable[[], BinaryIO], size: int, name: str,
                         meter: TransferProgress, *, exclusive: bool) -> None:
        """Parts in parallel as temporary objects, then one ``compose``, then the parts go."""
        part = max(self.conn.part_size(size), -(-size // COMPOSE_LIMIT))
        part = -(-part // (256 * 1024)) * (256 * 1024)
        spans = [(offset, min(part, size - offset)) for offset in range(0, size, part)]
        scratch = self.location.key("tmp", "uploads", uuid.uuid4().hex)
        parts = [self.bucket.blob(f"{scratch}/{i:02d}") for i in range(len(spans))]

        def send(index: int) -> None:
            offset, length = spans[index]
            self.send_stream(opener, offset, length, parts[index].name, meter, exclusive=False)
            self.count(parts_sent=1)

        try:
            self.pool_map(send, list(range(len(spans))))
            target = self.bucket.blob(name)
            target.content_type = OCTET
            self._create(target, exclusive, size, lambda condition: target.compose(
                parts, if_generation_match=condition, timeout=TIMEOUT, retry=self.conn.retry))
        finally:
            self.pool_map(lambda blob: self.delete(blob.name), parts)

    def send_stream(self, opener: Callable[[], BinaryIO], offset: int, length: int, name: str,
                    meter: TransferProgress, *, exclusive: bool) -> None:
        """``length`` bytes of a file from ``offset`` as object ``name``, in one streamed
        request, CRC32C-checked (:mod:`mldock_gcp.streaming`)."""
        blob = self.bucket.blob(name)

        def send(condition: Any) -> None:
            with opener() as handle:
                stream_upload(self.conn.session, blob, FileSlice(handle, offset, length, meter),
                              content_type=OCTET, if_generation_match=condition,
                              timeout=TIMEOUT, retry=self.conn.retry)

        self._create(blob, exclusive, length, send)

    def delete(self, name: str) -> None:
        """Remove an object; one already gone is fine."""
        from google.api_core import exceptions as gax

        with contextlib.suppress(gax.NotFound):
            self.bucket.blob(name).delete(timeout=TIMEOUT, retry=self.conn.retry)

    # --- download -------------------------------------------------------------------------------
    def get_bytes(self, name: str) -> bytes | None:
        """A small object's bytes (CRC32C-checked), or None when it does not exist."""
        from google.api_core import exceptions as gax

        try:
            return bytes(self.bucket.blob(name).download_as_bytes(timeout=TIMEOUT,
                                                                  retry=self.conn.retry))
        except gax.NotFound as exc:
            if not is_missing(exc):
                raise
            self.require_bucket()
            return None

    def download_blobs(self, downloads: list[BlobDownload], meter: TransferProgress) -> None:
        """Blobs into their staging files; the base store verifies their SHA-256."""
        small = [d for d in downloads if not self.conn.parallel_download(d.size)]
        self.pool_map(lambda d: self._get_small_blob(d, meter), small)
        for download in downloads:
            if self.conn.parallel_download(download.size):
                found = self.size_of(self.blob_key(download.sha256))
                if found is None:
                    raise BlobMissingError(download.sha256)
                self.download_ranges(self.blob_key(download.sha256), found, download.temp,
                                     meter)

    def _get_small_blob(self, download: BlobDownload, meter: TransferProgress) -> None:
        from google.api_core import exceptions as gax

        try:
            with download.open() as handle:
                self.bucket.blob(self.blob_key(download.sha256)).download_to_file(
                    MeteredWriter(handle, meter), raw_download=True, timeout=TIMEOUT,
                    retry=self.conn.retry)
        except gax.NotFound as exc:
            if not is_missing(exc):
                raise
            self.require_bucket()
            raise BlobMissingError(download.sha256) from None

    def download_ranges(self, name: str, found: tuple[int, int], path: Any,
                        meter: TransferProgress) -> None:
        """``max_concurrency`` ranges at once, each written in place, all of one generation."""
        size, generation = found
        step = self.conn.part_size(size)
        url = media_url(self.conn.endpoint, self.location.bucket, name, generation,
                        self.conn.options.project)
        with open(path, "wb") as handle:
            handle.truncate(size)

        def fetch(offset: int) -> None:
            fetch_range(self.conn.session, url, offset, min(size, offset + step) - 1, path,
                        meter, timeout=TIMEOUT)
            self.count(ranges_fetched=1)

        self.pool_map(fetch, list(range(0, size, step)))
