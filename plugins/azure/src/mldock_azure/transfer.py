"""Moving content-addressed blobs between local files and Azure Blob Storage, in parallel.

The base store (:class:`mldock.cas.ContentAddressedStore`) decides what to send and verifies what
arrives; this module makes the requests:

* **Small files** (under ``block_mb``) go in one Put Blob each, ``max_concurrency`` at a time. The
  bytes are read once, hashed, and sent only if they still hash to the blob's name; the request
  carries their MD5 (``Content-MD5``), which the service checks and keeps.
* **Big files** are read once, in order, while their blocks are staged ``max_concurrency`` at a
  time. The block list is committed only if the file's size and mtime are those it had when it
  was hashed (as the s3 store checks its multipart uploads; a second SHA-256 pass would cost
  more than the transfer on a busy machine): an uncommitted blob is invisible, and Azure
  discards its blocks after a week. The commit records the whole file's MD5 (computed as the
  blocks are read), so every later download can check it.
* **Writes are conditional** (``If-None-Match: *``): a blob that another writer stored meanwhile
  holds the same bytes (its name is their hash) and is left alone, so a reader streaming it is
  never cut off by an identical rewrite. Only a blob found with the wrong size is overwritten.
* **Downloads** stream through the base's hashing writer, so the SHA-256 is known when the last
  byte lands (no second pass): small blobs in one GET each, ``max_concurrency`` blobs at a time,
  also checked against the ``Content-MD5`` Azure keeps; big ones in ranges of ``block_mb``
  fetched ``max_concurrency`` at a time, pinned to the blob's ETag, written in order.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from mldock.cas import (
    BlobDownload,
    BlobMissingError,
    BlobSource,
    StoreStats,
    TransferProgress,
    blob_name,
)
from mldock.cas.layout import changed
from mldock.errors import MldockError

from mldock_azure.connection import BlobConnection
from mldock_azure.errors import STORAGE_ROLE, is_missing, translated
from mldock_azure.location import BlobLocation

BLOCK_ID_DIGITS = 16
"""Block ids of one blob must all have the same length; every mldock writer uses this one."""
OCTET_STREAM = "application/octet-stream"


@dataclass
class Stats(StoreStats):
    """The base counters, plus the requests existence checks and block uploads cost."""

    requests_head: int = 0
    blocks_staged: int = 0


def block_id(index: int) -> str:
    return base64.b64encode(f"{index:0{BLOCK_ID_DIGITS}d}".encode()).decode("ascii")


def md5_of(data: bytes) -> bytearray:
    """The MD5 (Azure's content checksum, not a security measure) in the SDK's form."""
    return bytearray(hashlib.md5(data, usedforsecurity=False).digest())


class BlobMover:
    """Blob transfers for one store (``<prefix>/blobs/sha256/ab/cdef…``)."""

    def __init__(self, conn: BlobConnection, location: BlobLocation, stats: Stats):
        self.conn = conn
        self.location = location
        self.stats = stats
        self._lock = threading.Lock()
        self._damaged: set[str] = set()

    # --- naming, counting, errors ----------------------------------------------------------------
    def blob_key(self, digest: str) -> str:
        """The blob name of a content blob: :func:`mldock.cas.blob_name` under the prefix."""
        return self.location.key(blob_name(digest))

    def count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def errors(self, action: str, name: str | None = None
               ) -> contextlib.AbstractContextManager[None]:
        """Azure errors of ``action`` as one-line MldockErrors naming the blob (or the store)."""
        where = self.location.child(name).uri if name else self.location.uri
        return translated(action, resource=where, role=STORAGE_ROLE,
                          endpoint=self.conn.account_url)

    def _pool(self, jobs: int) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=max(1, min(self.conn.options.max_concurrency, jobs)),
                                  thread_name_prefix="mldock-azblob")

    # --- existence --------------------------------------------------------------------------------
    def has_blob(self, digest: str, size: int) -> bool:
        """Whether the blob is stored with this size; a wrong size is absent (and overwritten)."""
        self.count(requests_head=1)
        try:
            props = self.conn.blob(self.blob_key(digest)).get_blob_properties()
        except Exception as exc:
            if is_missing(exc):
                return False
            raise
        if int(props.size) != size:
            with self._lock:
                self._damaged.add(digest)
            return False
        return True

    def missing(self, sources: list[BlobSource]) -> list[BlobSource]:
        """The sources (one per digest) whose blob is not stored yet: HEADs, in parallel."""
        unique = {source.sha256: source for source in sources}
        if len(unique) < 2:
            return [s for s in unique.values() if not self.has_blob(s.sha256, s.size)]
        with self._pool(len(unique)) as pool:
            found = list(pool.map(lambda s: self.has_blob(s.sha256, s.size), unique.values()))
        return [s for s, here in zip(unique.values(), found, strict=True) if not here]

    # --- upload -----------------------------------------------------------------------------------
    def upload(self, sources: list[BlobSource], *, progress: TransferProgress) -> None:
        """Store every source as its blob; raise if one changed since it was hashed."""
        block = self.conn.options.block_size
        small = [s for s in sources if s.size < block]
        large = [s for s in sources if s.size >= block]
        if small:
            with self._pool(len(small)) as pool:
                join_all([pool.submit(self._put_small, s, progress) for s in small])
        for source in large:
            self._put_large(source, progress)

    def _overwrite(self, digest: str) -> bool:
        with self._lock:
            return digest in self._damaged

    def _put_small(self, source: BlobSource, progress: TransferProgress) -> None:
        """One Put Blob of bytes checked against the blob's name (and MD5-checked by Azure)."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import ContentSettings

        with source.open() as handle:
            data = handle.read()
        if hashlib.sha256(data).hexdigest() != source.sha256 or len(data) != source.size:
            raise changed(source.label)
        # stored meanwhile by another writer: the same bytes, by its name
        with contextlib.suppress(ResourceExistsError):
            self.conn.blob(self.blob_key(source.sha256)).upload_blob(
                data, overwrite=self._overwrite(source.sha256), validate_content=True,
                content_settings=ContentSettings(content_type=OCTET_STREAM))
        progress.add(len(data))

    def _put_large(self, source: BlobSource, progress: TransferProgress) -> None:
        """Blocks staged in parallel while the file is read once; committed only if the file
        did not change since it was hashed."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import BlobBlock, ContentSettings

        client = self.conn.blob(self.blob_key(source.sha256))
        md5 = hashlib.md5(usedforsecurity=False)
        concurrency = self.conn.options.max_concurrency
        window = threading.BoundedSemaphore(2 * concurrency)  # blocks in memory at most
        ids: list[str] = []
        read = 0

        def stage(index: int, data: bytes) -> None:
            try:
                client.stage_block(block_id(index), data)
                self.count(blocks_staged=1)
                progress.add(len(data))
            finally:
                window.release()

        futures: list[Future[None]] = []
        with source.open() as handle, self._pool(concurrency) as pool:
            for index, data in enumerate(_blocks(handle, self.conn.options.block_size)):
                md5.update(data)
                read += len(data)
                ids.append(block_id(index))
                window.acquire()
                futures.append(pool.submit(stage, index, data))
                if any(f.done() and f.exception() for f in futures):
                    break
            join_all(futures)
        if not source.unchanged() or read != source.size:
            raise changed(source.label)
        settings = ContentSettings(content_type=OCTET_STREAM,
                                   content_md5=bytearray(md5.digest()))
        conditions = {} if self._overwrite(source.sha256) else {"if_none_match": "*"}
        with contextlib.suppress(ResourceExistsError):  # stored meanwhile by another writer
            client.commit_block_list([BlobBlock(block_id=i) for i in ids],
                                     content_settings=settings, **conditions)

    def put_bytes(self, name: str, data: bytes, *, content_type: str, action: str) -> None:
        """One small blob (a manifest or a reference), replaced whole, MD5-checked by Azure."""
        from azure.storage.blob import ContentSettings

        with self.errors(action, name[len(self.location.prefix):].lstrip("/")):
            self.conn.blob(name).upload_blob(
                data, overwrite=True, validate_content=True,
                content_settings=ContentSettings(content_type=content_type))

    def get_bytes(self, name: str, *, action: str) -> bytes | None:
        """A small blob's bytes, or None when it does not exist (a missing container raises)."""
        with self.errors(action, name[len(self.location.prefix):].lstrip("/")):
            try:
                downloader = self.conn.blob(name).download_blob(max_concurrency=1)
                data = downloader.readall()
            except Exception as exc:
                if is_missing(exc):
                    return None
                raise
        _check_md5(downloader, hashlib.md5(data, usedforsecurity=False).digest(), name)
        return bytes(data)

    # --- download ---------------------------------------------------------------------------------
    def download(self, downloads: list[BlobDownload], *, progress: TransferProgress) -> None:
        """Fetch blobs into their staging files; the base store verifies their SHA-256.

        A blob that is gone raises :class:`~mldock.cas.BlobMissingError`.
        """
        block = self.conn.options.block_size
        small = [d for d in downloads if d.size < block]
        large = [d for d in downloads if d.size >= block]
        if small:
            with self._pool(len(small)) as pool:
                join_all([pool.submit(self._get_small, d, progress) for d in small])
        for download in large:
            self._get_large(download, progress)

    def _get_small(self, download: BlobDownload, progress: TransferProgress) -> None:
        """One GET, hashed (SHA-256 and MD5) while it streams into the staging file."""
        md5 = hashlib.md5(usedforsecurity=False)
        with _missing_as(download.sha256):
            downloader = self.conn.blob(self.blob_key(download.sha256)).download_blob(
                max_concurrency=1)
            with download.open() as handle:
                for chunk in downloader.chunks():
                    handle.write(chunk)
                    md5.update(chunk)
                    progress.add(len(chunk))
        _check_md5(downloader, md5.digest(), self.blob_key(download.sha256))

    def _get_large(self, download: BlobDownload, progress: TransferProgress) -> None:
        """Ranges fetched ``max_concurrency`` at a time (pinned to the blob's ETag) and written
        in order through the base's hashing writer: the SHA-256 is computed as the bytes arrive,
        with no second pass over the file. (No MD5 here: the SHA-256 is the stronger check, and
        a second hash of every byte costs more than the transfer on a busy machine.)"""
        from azure.core import MatchConditions

        client = self.conn.blob(self.blob_key(download.sha256))
        step = self.conn.options.block_size
        with _missing_as(download.sha256):
            props = client.get_blob_properties()
            size = int(props.size)

            def fetch(offset: int) -> bytes:
                return bytes(client.download_blob(
                    offset=offset, length=min(step, size - offset), max_concurrency=1,
                    etag=props.etag, match_condition=MatchConditions.IfNotModified).readall())

            offsets = iter(range(0, size, step))
            ahead = 2 * self.conn.options.max_concurrency  # ranges held in memory at most
            with self._pool(ahead) as pool, download.open() as handle:
                pending = deque(pool.submit(fetch, o) for o in itertools.islice(offsets, ahead))
                try:
                    while pending:
                        data = pending.popleft().result()
                        handle.write(data)
                        progress.add(len(data))
                        pending.extend(pool.submit(fetch, o) for o in itertools.islice(offsets, 1))
                finally:
                    for future in pending:
                        future.cancel()


def _blocks(handle: Any, size: int) -> Iterator[bytes]:
    """The file's bytes in blocks of ``size`` (the last one shorter)."""
    while True:
        data = handle.read(size)
        if not data:
            return
        while len(data) < size:  # a short read before the end (pipes, some file systems)
            more = handle.read(size - len(data))
            if not more:
                break
            data += more
        yield data


def join_all(futures: list[Future[Any]]) -> None:
    """Wait for every future; on the first failure cancel the rest and raise it."""
    _, pending = wait(futures, return_when=FIRST_EXCEPTION)
    for future in pending:
        future.cancel()
    wait(pending)
    for future in futures:
        if future.done() and not future.cancelled() and future.exception() is not None:
            future.result()


@contextlib.contextmanager
def _missing_as(digest: str) -> Iterator[None]:
    """A blob that is gone becomes the base's BlobMissingError."""
    try:
        yield
    except MldockError:
        raise
    except Exception as exc:
        if is_missing(exc):
            raise BlobMissingError(digest) from None
        raise


def _check_md5(downloader: Any, got: bytes, name: str) -> None:
    """Compare with the ``Content-MD5`` Azure kept for the blob, when it kept one."""
    settings = getattr(downloader.properties, "content_settings", None)
    expected = getattr(settings, "content_md5", None)
    if expected and bytes(expected) != got:
        raise MldockError(f"blob {name} arrived damaged: its MD5 does not match the Content-MD5"
                          " Azure recorded", hint="retry; if it persists, store the artifact"
                          " again")

