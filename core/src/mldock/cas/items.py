"""What a store moves: blobs about to be sent (:class:`BlobSource`) and blobs being fetched
(:class:`BlobDownload`), each with the size and SHA-256 the base store already knows.

A backend reads a source through :meth:`BlobSource.open` (a tree's file is reopened with
:func:`mldock.trees.open_entry`, so it is the very file the walk checked) or uploads it by
:attr:`BlobSource.path` and then asks :meth:`BlobSource.unchanged`. A download is written either as
a stream through :meth:`BlobDownload.open` (hashed as it is written, one pass) or by name into
:attr:`BlobDownload.temp` (hashed afterwards); the base store verifies and renames it into place.
Standard library only.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from mldock.cas.hashing import sha256_and_size, sha256_bytes, sha256_stream
from mldock.trees import TreeEntry, open_entry

HASH_THREADS = min(4, os.cpu_count() or 1)
"""Files hashed at once (hashlib releases the GIL, so big files hash in parallel)."""


@dataclass(frozen=True)
class BlobSource:
    """Content about to be stored: its hash and size, and where to read it.

    ``path`` is the real file (links resolved) or ``None`` for in-memory content (``data``);
    ``signature`` is the file's (size, mtime_ns) when it was hashed.
    """

    sha256: str
    size: int
    path: Path | None = None
    signature: tuple[int, int] = (0, 0)
    entry: TreeEntry | None = None
    data: bytes | None = None
    rel: str = ""
    mode: int = 0o644

    @classmethod
    def of_file(cls, path: Path) -> BlobSource:
        """A file the user named (``put_file``): hashed now."""
        before = os.stat(path)
        digest, size = sha256_and_size(path)
        return cls(digest, size, Path(path), (before.st_size, before.st_mtime_ns))

    @classmethod
    def of_entry(cls, entry: TreeEntry) -> BlobSource:
        """A file of a walked tree, opened by :func:`open_entry` to hash it."""
        with open_entry(entry) as handle:
            before = os.fstat(handle.fileno())
            digest, size = sha256_stream(handle)
        return cls(digest, size, entry.path, (before.st_size, before.st_mtime_ns), entry,
                   rel=entry.rel, mode=entry.mode)

    @classmethod
    def of_bytes(cls, data: bytes) -> BlobSource:
        """Small content held in memory (a manifest)."""
        return cls(sha256_bytes(data), len(data), data=data)

    def open(self) -> BinaryIO:
        """A fresh reader of the content (a tree's file: the file the walk saw, or an error)."""
        if self.data is not None:
            return io.BytesIO(self.data)
        if self.entry is not None:
            return open_entry(self.entry)
        assert self.path is not None  # noqa: S101 - of_file and of_entry always set it
        return open(self.path, "rb")

    @property
    def label(self) -> str:
        """How error messages name this source."""
        return str(self.path) if self.path is not None else "content"

    def unchanged(self) -> bool:
        """Whether the file still has the size and mtime it had when hashed."""
        if self.path is None:
            return True
        try:
            now = os.stat(self.path)
        except OSError:
            return False
        return (now.st_size, now.st_mtime_ns) == self.signature and now.st_size == self.size


def hash_entries(entries: list[TreeEntry]) -> list[BlobSource]:
    """Every walked file as a :class:`BlobSource`, hashed on a few threads, in order."""
    if len(entries) < 2:
        return [BlobSource.of_entry(entry) for entry in entries]
    with ThreadPoolExecutor(max_workers=min(HASH_THREADS, len(entries)),
                            thread_name_prefix="mldock-hash") as pool:
        return list(pool.map(BlobSource.of_entry, entries))


class _HashingWriter(io.RawIOBase):
    """A binary file that hashes and counts what is written to it."""

    def __init__(self, target: BinaryIO, download: BlobDownload):
        self.target, self.download = target, download

    def writable(self) -> bool:
        return True

    def write(self, chunk: bytes) -> int:  # type: ignore[override]  # bytes in, count out
        self.target.write(chunk)
        self.download.hasher.update(chunk)
        self.download.streamed += len(chunk)
        return len(chunk)


@dataclass
class BlobDownload:
    """One blob to fetch into ``temp`` (a staging file beside ``dest``), then verified.

    ``size`` is -1 when unknown (a manifest, whose size the reference does not record).
    """

    sha256: str
    size: int
    temp: Path
    dest: Path | None = None
    mode: int = 0o644
    part: str = ""
    hasher: hashlib._Hash = field(default_factory=hashlib.sha256)
    streamed: int = 0
    opened: bool = False

    @contextlib.contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """A writer into ``temp`` that hashes as it writes (start over: open again)."""
        self.hasher, self.streamed, self.opened = hashlib.sha256(), 0, True
        with open(self.temp, "wb") as handle:
            yield _HashingWriter(handle, self)  # type: ignore[misc]  # a RawIOBase is binary IO

    def result(self) -> tuple[str, int]:
        """The SHA-256 and size of what was written (by :meth:`open`, else read back)."""
        if self.opened:
            return self.hasher.hexdigest(), self.streamed
        return sha256_and_size(self.temp)

    def matches(self) -> tuple[bool, str]:
        """Whether the bytes written are the blob's, and their hash."""
        got, size = self.result()
        return got == self.sha256 and size == (self.size if self.size >= 0 else size), got

    def commit(self) -> None:
        """Rename the verified file into place with its permission bits."""
        assert self.dest is not None  # noqa: S101 - only file downloads are committed
        os.chmod(self.temp, self.mode & 0o777)
        os.replace(self.temp, self.dest)


@contextlib.contextmanager
def staged_download(sha256: str, size: int, dest: Path, *, mode: int = 0o644, part: str = ""
                    ) -> Iterator[BlobDownload]:
    """A :class:`BlobDownload` whose temp file sits beside ``dest``, removed unless committed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    try:
        yield BlobDownload(sha256, size, Path(temp), dest, mode, part)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)


@contextlib.contextmanager
def staged_folder(dest: Path) -> Iterator[Path]:
    """Where to fetch a tree so ``dest`` appears whole or not at all.

    Yields a sibling folder that is renamed to ``dest`` when the block succeeds and removed when it
    fails; yields ``dest`` itself when it exists already (files are then replaced one by one).
    """
    if dest.exists():
        yield dest
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent))
    try:
        yield staging
        os.chmod(staging, 0o755)  # noqa: S103 - a fetched folder: readable like mkdir's default
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
