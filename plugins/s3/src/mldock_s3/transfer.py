"""Moving content-addressed blobs between local files and S3, in parallel, verified both ways.

* **Uploads** go through s3transfer's TransferManager: small blobs in one PUT, big ones in parallel
  parts (``[storage.s3] multipart_*``), all files of a tree sharing ``max_concurrency`` requests.
  A single-request upload carries ``ChecksumSHA256`` (the blob's own name), so AWS S3 refuses bytes
  that do not match it; a multipart one is checked by re-reading the source's size and mtime after
  the upload, and the blob is withdrawn if the file changed meanwhile.
* **Existence checks** are HEAD requests run ``max_concurrency`` at a time.
* **Downloads** land in a temp file beside the destination and are renamed into place only once
  their SHA-256 matches: small blobs are hashed while they stream (one GET), big ones are fetched in
  parallel ranges by s3transfer and hashed after.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boto3.s3.transfer import create_transfer_manager
from botocore.exceptions import ClientError
from mldock.errors import MldockError
from mldock.local.hashing import CHUNK_SIZE, sha256_and_size

from mldock_s3.client import S3Connection
from mldock_s3.errors import is_missing, translated
from mldock_s3.location import S3Location
from mldock_s3.progress import TransferProgress

BAD_DIGEST_CODES = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}
LIST_FROM = 16
"""From this many unknown blobs on, existence is first settled by listing instead of HEADs."""
LIST_WORTH = 12
"""A listing page must settle at least this many keys to go on listing (AWS prices a LIST like
about 12 HEADs)."""


@dataclass
class Stats:
    """What one store object really moved: for users, benchmarks and the conformance kit."""

    bytes_sent: int = 0
    bytes_received: int = 0
    blobs_written: int = 0
    blobs_reused: int = 0
    requests_head: int = 0
    requests_list: int = 0


@dataclass(frozen=True)
class Source:
    """A local file about to be stored: its hash and the (size, mtime) it had when hashed."""

    path: Path
    sha256: str
    size: int
    signature: tuple[int, int]

    @classmethod
    def hash(cls, path: Path) -> Source:
        before = os.stat(path)
        digest, size = sha256_and_size(path)
        return cls(path, digest, size, (before.st_size, before.st_mtime_ns))

    def unchanged(self) -> bool:
        try:
            now = os.stat(self.path)
        except OSError:
            return False
        return (now.st_size, now.st_mtime_ns) == self.signature and now.st_size == self.size


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
        """Same layout as the local store, so a local store's folder synced to S3 is valid."""
        return self.location.key("blobs", "sha256", digest[:2], digest[2:])

    def count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def errors(self, action: str, key: str | None = None) -> contextlib.AbstractContextManager:
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

    def missing(self, sources: Iterable[Source], known: set[str], action: str) -> list[Source]:
        """Sources whose content is not stored yet (one per digest).

        Many unknown blobs are first looked up by listing (see :meth:`_decide_by_listing`); what
        a listing cannot settle cheaply is checked with HEAD requests, in parallel.
        """
        unique: dict[str, Source] = {}
        for source in sources:
            if source.sha256 not in known:
                unique.setdefault(source.sha256, source)
        if not unique:
            return []
        with self.errors(action):
            present, decided = set(), set()
            if len(unique) >= LIST_FROM:
                present, decided = self._decide_by_listing(unique)
            rest = [s for d, s in unique.items() if d not in decided]
            if rest:
                with self._pool(len(rest)) as pool:
                    found = pool.map(lambda s: self.has_blob(s.sha256, s.size), rest)
                    present.update(s.sha256 for s, here in zip(rest, found) if here)
        absent = [s for d, s in unique.items() if d not in present]
        self.count(blobs_reused=len(unique) - len(absent))
        return absent

    def _decide_by_listing(self, unique: dict[str, Source]) -> tuple[set[str], set[str]]:
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
    def upload(self, sources: list[Source], *, action: str, progress: TransferProgress) -> None:
        """Store every source as its blob; raise if one changed since it was hashed."""
        if not sources:
            return
        config = self.conn.transfer_config()
        with self.errors(action), create_transfer_manager(self.conn.client, config) as manager:
            futures = []
            for source in sources:
                extra: dict[str, Any] = {"ContentType": "application/octet-stream"}
                if source.size < config.multipart_threshold and self.conn.sends_checksums:
                    extra["ChecksumSHA256"] = checksum_sha256(source.sha256)
                future = manager.upload(str(source.path), self.location.bucket,
                                        self.blob_key(source.sha256), extra_args=extra,
                                        subscribers=[progress.subscriber()])
                futures.append((source, future))
            for source, future in futures:
                try:
                    future.result()
                except ClientError as exc:
                    code = exc.response.get("Error", {}).get("Code")
                    if code in BAD_DIGEST_CODES:
                        raise self._changed(source) from exc
                    raise
                if not source.unchanged():
                    self._withdraw(source)
                    raise self._changed(source)
                self.count(bytes_sent=source.size, blobs_written=1)

    def _changed(self, source: Source) -> MldockError:
        return MldockError(f"{source.path} changed while it was being stored; nothing was published",
                           hint="store it again once nothing writes to it")

    def _withdraw(self, source: Source) -> None:
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
    def download(self, items: list[tuple[str, int, Path, int]], *, action: str,
                 progress: TransferProgress, on_bad: Callable[[str, Path, str], MldockError]) -> None:
        """Fetch blobs ``(sha256, size, dest, mode)`` into place, verified, in parallel.

        ``on_bad(digest, dest, got)`` builds the error for a blob whose bytes do not match its name
        (``got`` is ``"missing"`` when the blob is gone). Nothing unverified is ever renamed to
        ``dest``; temp files are removed whatever happens.
        """
        if not items:
            return
        config = self.conn.transfer_config()
        small = [item for item in items if item[1] < config.multipart_threshold]
        large = [item for item in items if item[1] >= config.multipart_threshold]
        with self.errors(action):
            if small:
                with self._pool(len(small)) as pool:
                    futures = [pool.submit(self._get_small, *item, progress, on_bad)
                               for item in small]
                    try:
                        for future in as_completed(futures):
                            future.result()
                    except BaseException:
                        for future in futures:
                            future.cancel()
                        raise
            if large:
                ranged = self.conn.transfer_config(self.conn.range_size(max(i[1] for i in large)))
                self._get_large(large, ranged, progress, on_bad)

    def _get_small(self, digest: str, size: int, dest: Path, mode: int,
                   progress: TransferProgress, on_bad: Callable[..., MldockError]) -> None:
        """One GET, hashed while it streams into a temp file beside ``dest``."""
        try:
            response = self.conn.client.get_object(Bucket=self.location.bucket,
                                                   Key=self.blob_key(digest))
        except ClientError as exc:
            if is_missing(exc):
                raise on_bad(digest, dest, "missing") from None
            raise
        with contextlib.closing(response["Body"]) as body, _staged(dest) as (handle, _, commit):
            hasher, got_size = hashlib.sha256(), 0
            for chunk in iter(lambda: body.read(CHUNK_SIZE), b""):
                hasher.update(chunk)
                handle.write(chunk)
                got_size += len(chunk)
                progress.add(len(chunk))
            got = hasher.hexdigest()
            if got != digest or got_size != size:
                raise on_bad(digest, dest, got)
            commit(mode)
        self.count(bytes_received=size)

    def _get_large(self, items: list[tuple[str, int, Path, int]], config: Any,
                   progress: TransferProgress, on_bad: Callable[..., MldockError]) -> None:
        """Parallel ranged GETs by s3transfer into temp files, each hashed once complete."""
        from s3transfer.subscribers import BaseSubscriber

        class _Size(BaseSubscriber):
            def __init__(self, size: int):
                self.size = size

            def on_queued(self, future: Any, **kwargs: Any) -> None:
                future.meta.provide_transfer_size(self.size)

        with contextlib.ExitStack() as stack:
            staged = []
            for digest, size, dest, mode in items:
                handle, temp, commit = stack.enter_context(_staged(dest))
                handle.close()  # s3transfer writes by name (its own temp + rename onto ours)
                staged.append((digest, size, dest, mode, temp, commit))
            # entered last, so it exits first: transfers are cancelled and joined before the
            # temp files are removed
            manager = stack.enter_context(create_transfer_manager(self.conn.client, config))
            pending = [(*item, manager.download(self.location.bucket, self.blob_key(item[0]),
                                                str(item[4]),
                                                subscribers=[_Size(item[1]), progress.subscriber()]))
                       for item in staged]
            for digest, size, dest, mode, temp, commit, future in pending:
                try:
                    future.result()
                except ClientError as exc:
                    if is_missing(exc):
                        raise on_bad(digest, dest, "missing") from None
                    raise
                got, got_size = sha256_and_size(temp)
                if got != digest or got_size != size:
                    raise on_bad(digest, dest, got)
                commit(mode)
                self.count(bytes_received=size)


@contextlib.contextmanager
def _staged(dest: Path) -> Iterator[tuple[Any, Path, Callable[[int], None]]]:
    """A temp file beside ``dest`` (open handle and path) and ``commit(mode)`` renaming it there;
    removed otherwise."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    handle = os.fdopen(fd, "wb")

    def commit(mode: int) -> None:
        handle.close()
        os.chmod(temp, mode & 0o777)
        os.replace(temp, dest)

    try:
        yield handle, Path(temp), commit
    finally:
        handle.close()
        with contextlib.suppress(OSError):
            os.unlink(temp)
