"""The local artifact store: content-addressed blobs and atomic references in one folder.

Layout under the root folder::

    blobs/sha256/ab/cdef…   file contents, named by their SHA-256, written once, read-only
    refs/<key>/.mldock-ref  {"sha256", "size", "kind"}: which blob a key points at
    tmp/                    staging for blobs being written (same file system as blobs/)
    lock                    shared by readers and writers, exclusive for gc()

The semantics (dedup, blobs then manifest then reference, verified staged fetches, key rules,
error texts) are :class:`mldock.cas.ContentAddressedStore`'s; this module adds the folder's
primitives and what only a folder needs:

* **Blobs are real copies** (no hard links): editing a source file later cannot change what was
  stored. A blob is copied to a temp name in ``tmp/``, checked against the hash it was stored
  under (a file changed mid-copy is an error), fsynced and renamed into place, read-only.
* **References** are written to a temp file beside them, fsynced, then :func:`os.replace`'d: two
  processes writing one key, the last complete write wins. A reference lives in a folder named by
  its key, so ``a`` and ``a/b`` coexist.
* **Locks**: readers and writers share ``lock``; :meth:`LocalArtifactStore.gc` takes it alone.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO
from urllib.parse import unquote

from mldock.cas import layout
from mldock.cas.hashing import CHUNK_SIZE, copy_hashing
from mldock.cas.items import BlobDownload, BlobSource, staged_folder
from mldock.cas.layout import KEY_HINT, REF_NAME, validate_key
from mldock.cas.progress import TransferProgress
from mldock.cas.store import ContentAddressedStore, StoreStats
from mldock.errors import MldockError, UsageError
from mldock.interfaces import HealthCheck
from mldock.local.diskspace import is_no_space, no_space_error

try:  # POSIX advisory locks keep gc() from deleting blobs a writer or reader is using
    import fcntl
except ImportError:  # pragma: no cover - Windows: gc() falls back to a grace period
    fcntl = None  # type: ignore[assignment]

GC_GRACE_SECONDS = 3600.0

__all__ = ["GC_GRACE_SECONDS", "KEY_HINT", "REF_NAME", "LocalArtifactStore", "StoreStats",
           "atomic_write_bytes", "staged_folder", "validate_key"]


def _fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _staged(folder: Path, prefix: str, suffix: str
            ) -> Iterator[tuple[IO[bytes], Callable[[Path, int], None]]]:
    """A temp file in ``folder`` and ``commit(final, mode)`` to rename it durably into place.

    The file is deleted if the block raises or never commits, also when closing it fails too (a
    full disk fails the flush of buffered bytes again at close). The folder is recreated if a
    concurrent :meth:`LocalArtifactStore.delete` just removed it (empty) before the file existed.
    """
    for _ in range(10):
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
            break
    else:
        raise MldockError(f"cannot create a temporary file in {folder}: it keeps disappearing")
    handle = os.fdopen(fd, "wb")

    def commit(final: Path, mode: int) -> None:
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.chmod(tmp, mode & 0o777)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    try:
        yield handle, commit
    finally:
        with contextlib.suppress(OSError):
            handle.close()  # raises again after a failed flush; the descriptor is closed anyway
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # gone already when committed


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` via a fsynced temp file in the same folder and os.replace."""
    with _staged(path.parent, f"{path.name}.", ".tmp") as (handle, commit):
        handle.write(data)
        commit(path, mode)


class LocalArtifactStore(ContentAddressedStore):
    """Artifacts in a local folder (see the module docstring for the layout and guarantees).

    Args:
        root: the store's folder; created on the first write, not by the constructor.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(os.path.abspath(os.path.expanduser(os.fspath(root))))
        self.uri = self.root.as_uri()
        self.stats = StoreStats()

    @classmethod
    def from_uri(cls, uri: str, *, base_dir: str | os.PathLike[str] | None = None
                 ) -> LocalArtifactStore:
        """A store from ``file:///abs/path``, ``file://rel/path`` or a plain path.

        Relative paths are taken relative to ``base_dir`` (the project folder), else the current
        one.
        """
        text = (uri or "").strip()
        if text[:5].lower() == "file:":
            text = text[5:]
            if text.startswith("//"):
                text = text[2:]
                if text.startswith("localhost/"):
                    text = text[len("localhost"):]
            text = unquote(text)
        if not text:
            raise UsageError(f"invalid storage URI {uri!r}: no folder given",
                             hint="use e.g. 'file:///srv/artifacts' or '.mldock/artifacts'")
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = Path(base_dir if base_dir is not None else Path.cwd()) / path
        return cls(path)

    def __repr__(self) -> str:
        return f"LocalArtifactStore({str(self.root)!r})"

    # --- paths and locks ----------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        """Where the blob of ``digest`` lives (it may not exist). For tools and tests."""
        return self.root / "blobs" / "sha256" / digest[:2] / digest[2:]

    def _ref_path(self, key: str) -> Path:
        return self.root.joinpath("refs", *key.split("/"), REF_NAME)

    @contextlib.contextmanager
    def _lock(self, exclusive: bool = False) -> Iterator[None]:
        if fcntl is None or (not exclusive and not self.root.is_dir()):
            yield
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _os_errors(self, action: str, where: Path | None = None) -> Iterator[None]:
        """OSError as a one-line MldockError; ``where`` is written to (default: the store)."""
        try:
            yield
        except OSError as exc:
            if is_no_space(exc):
                raise no_space_error(where or self.root,
                                     setting=None if where else "[storage] uri") from exc
            raise MldockError(f"cannot {action} in {self.root}: {exc.strerror or exc}",
                              hint="check the folder's permissions and free disk space") from exc

    @contextlib.contextmanager
    def guard(self, action: str, where: Path | None = None) -> Iterator[None]:
        """Every operation holds the shared lock; OSError becomes a one-line MldockError."""
        with self._os_errors(action, where), self._lock():
            yield

    def ref_location(self, key: str) -> str:
        return str(self._ref_path(key))

    # --- blob primitives ------------------------------------------------------------------------
    def has_blob(self, digest: str, size: int) -> bool:
        try:
            return self.blob_path(digest).stat().st_size == size  # else damaged: write it again
        except FileNotFoundError:
            return False

    def put_blob(self, source: BlobSource, meter: TransferProgress) -> None:
        """Copy into ``tmp/``, check the hash of the bytes copied, rename into ``blobs/``."""
        with source.open() as handle, _staged(self.root / "tmp", "blob.", ".tmp") as (out, commit):
            digest, size = copy_hashing(handle, out, meter.add)
            if (digest, size) != (source.sha256, source.size):
                raise layout.changed(source.label)
            commit(self.blob_path(digest), 0o444)

    def get_blob(self, download: BlobDownload, meter: TransferProgress) -> None:
        try:
            source = open(self.blob_path(download.sha256), "rb")  # noqa: SIM115 - entered below
        except FileNotFoundError:
            raise layout.BlobMissingError(download.sha256) from None
        with source, download.open() as out:
            for chunk in iter(lambda: source.read(CHUNK_SIZE), b""):
                out.write(chunk)
                meter.add(len(chunk))

    def get_small_blob(self, digest: str) -> bytes | None:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            return None

    # --- reference primitives -------------------------------------------------------------------
    def put_ref(self, key: str, data: bytes) -> None:
        atomic_write_bytes(self._ref_path(key), data)

    def get_ref(self, key: str) -> bytes | None:
        try:
            return self._ref_path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def list_refs(self, prefix: str) -> list[str]:
        refs = self.root / "refs"
        folder, _, head = prefix.rpartition("/")
        start = refs.joinpath(*folder.split("/")) if folder else refs
        keys = []
        for dirpath, dirnames, filenames in os.walk(start):
            if dirpath == str(start):
                dirnames[:] = [d for d in dirnames if d.startswith(head)]
            if REF_NAME in filenames:
                keys.append(os.path.relpath(dirpath, refs).replace(os.sep, "/"))
        return keys

    def delete_ref(self, key: str) -> None:
        path = self._ref_path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        refs, folder = self.root / "refs", path.parent
        while folder != refs:  # drop folders left empty; stop at the first one still in use
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent

    def check(self) -> list[HealthCheck]:
        probe = self.root / "tmp" / f"check-{os.getpid()}"
        try:
            atomic_write_bytes(probe, b"ok")
            probe.unlink()
        except (OSError, MldockError) as exc:
            detail = getattr(exc, "strerror", None) or str(exc)
            return [HealthCheck("artifact store", False, f"cannot write to {self.root}: {detail}",
                                "fix the folder's permissions or set [storage] uri")]
        return [HealthCheck("artifact store", True, f"{self.uri} is writable")]

    # --- maintenance --------------------------------------------------------------------------
    def gc(self) -> dict[str, int]:
        """Remove blobs no reference uses and temp files left by interrupted writes.

        Takes the store's exclusive lock, so it is safe while other processes read and write (they
        wait). Refuses to delete anything when a reference or manifest cannot be read. Returns
        counts: ``blobs_removed``, ``bytes_freed``, ``temp_removed``.
        """
        report = {"blobs_removed": 0, "bytes_freed": 0, "temp_removed": 0}
        if not self.root.is_dir():
            return report
        # Without locks (Windows) a writer may be mid-way: spare anything recent.
        cutoff = time.time() - (GC_GRACE_SECONDS if fcntl is None else -1.0)
        with self._os_errors("collect garbage"), self._lock(exclusive=True):
            used = set(self.blobs_used())
            blobs = self.root / "blobs" / "sha256"
            for shard in sorted(blobs.iterdir()) if blobs.is_dir() else []:
                for blob in shard.iterdir():
                    info = blob.stat()
                    if shard.name + blob.name not in used and info.st_mtime < cutoff:
                        blob.unlink()
                        report["blobs_removed"] += 1
                        report["bytes_freed"] += info.st_size
                with contextlib.suppress(OSError):
                    shard.rmdir()
            for dirpath, _, filenames in os.walk(self.root):
                for name in filenames:
                    path = Path(dirpath, name)
                    stale = (name.endswith(".tmp") and (path.parent == self.root / "tmp"
                                                        or name.startswith(REF_NAME + ".")))
                    if stale and path.stat().st_mtime < cutoff:
                        path.unlink()
                        report["temp_removed"] += 1
        return report
