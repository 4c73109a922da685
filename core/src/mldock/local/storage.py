"""The local artifact store: content-addressed blobs and atomic references in one folder.

Layout under the root folder::

    blobs/sha256/ab/cdef…   file contents, named by their SHA-256, written once, read-only
    refs/<key>/.mldock-ref  {"sha256", "size", "kind"}: which blob a key points at
    tmp/                    staging for blobs being written (same file system as blobs/)
    lock                    shared by readers and writers, exclusive for gc()

* **Never copied twice.** A file is hashed first; if its blob exists only the reference is written.
  Blobs are real copies (no hard links): editing a source file later cannot change what was stored.
* **Atomic.** Every file is written to a temp name on the same file system, fsynced, then renamed
  into place with :func:`os.replace`. A blob is named by the hash of the bytes actually copied, so it
  is right even if the source changes mid-copy. A tree's manifest (path -> sha256, size, mode) is a
  blob stored after all its files, and the reference to it is written last: an interrupted
  ``put_tree`` leaves only unreferenced blobs (see :meth:`LocalArtifactStore.gc`), never a partial
  tree. Two processes writing one key: the last complete write wins.
* **Nested keys.** A reference lives in a folder named by its key, so ``a`` and ``a/b`` coexist.
* **Verified reads.** Fetches hash what they copy and raise :class:`~mldock.errors.MldockError`
  naming the key on a mismatch, before anything is renamed into the destination.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.interfaces import ArtifactRef, ArtifactStore, HealthCheck, ProgressSink, null_progress
from mldock.local.diskspace import is_no_space, no_space_error
from mldock.local.hashing import Manifest, copy_hashing, manifest_bytes, sha256_bytes, sha256_stream
from mldock.trees import open_entry, walk_contained

try:  # POSIX advisory locks keep gc() from deleting blobs a writer or reader is using
    import fcntl
except ImportError:  # pragma: no cover - Windows: gc() falls back to a grace period
    fcntl = None  # type: ignore[assignment]

REF_NAME = ".mldock-ref"
"""File name of a key's reference inside ``refs/<key>/``; key parts may not start with it."""

KEY_HINT = "use a relative '/'-separated path such as 'models/iris', without '..' or empty parts"
GC_GRACE_SECONDS = 3600.0


@dataclass
class StoreStats:
    """Counters of one store object: what was really copied, for users and the conformance kit."""

    bytes_sent: int = 0
    bytes_received: int = 0
    blobs_written: int = 0
    blobs_reused: int = 0


def validate_key(key: str, *, what: str = "artifact key") -> str:
    """Return ``key`` if it is a safe relative ``/``-separated path, else raise UsageError."""
    if not isinstance(key, str) or not key:
        raise UsageError(f"invalid {what} {key!r}: it is empty", hint=KEY_HINT)
    parts = key.split("/")
    problems = [
        (key.startswith("/"), "it must be relative (no leading '/')"),
        ("\\" in key, "use '/' to separate parts, not '\\'"),
        (any(ord(c) < 32 for c in key), "it contains a control character"),
        (any(p in ("", ".", "..") for p in parts), "it has an empty, '.' or '..' part"),
        (any(p.startswith(REF_NAME) for p in parts), f"parts starting {REF_NAME!r} are reserved"),
    ]
    for bad, reason in problems:
        if bad:
            raise UsageError(f"invalid {what} {key!r}: {reason}", hint=KEY_HINT)
    return key


def _fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _staged(folder: Path, prefix: str, suffix: str) -> Iterator[tuple[IO[bytes], Callable]]:
    """A temp file in ``folder`` and ``commit(final, mode, durable)`` to rename it into place.

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

    def commit(final: Path, mode: int, durable: bool = True) -> None:
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
        handle.close()
        os.chmod(tmp, mode & 0o777)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        if durable:
            _fsync_dir(final.parent)

    try:
        yield handle, commit
    finally:
        with contextlib.suppress(OSError):
            handle.close()  # raises again after a failed flush; the descriptor is closed anyway
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # gone already when committed


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
        os.chmod(staging, 0o755)
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` via a fsynced temp file in the same folder and os.replace."""
    with _staged(path.parent, f"{path.name}.", ".tmp") as (handle, commit):
        handle.write(data)
        commit(path, mode)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


class LocalArtifactStore(ArtifactStore):
    """Artifacts in a local folder (see the module docstring for the layout and guarantees).

    Args:
        root: the store's folder; created on the first write, not by the constructor.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(os.path.abspath(os.path.expanduser(os.fspath(root))))
        self.uri = self.root.as_uri()
        self.stats = StoreStats()
        self._stats_lock = threading.Lock()

    @classmethod
    def from_uri(cls, uri: str, *, base_dir: str | os.PathLike[str] | None = None
                 ) -> LocalArtifactStore:
        """A store from ``file:///abs/path``, ``file://rel/path`` or a plain path.

        Relative paths are taken relative to ``base_dir`` (the project folder), else the current one.
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

    def _count(self, **deltas: int) -> None:
        with self._stats_lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    # --- blobs --------------------------------------------------------------------------------
    def _have_blob(self, digest: str, size: int) -> bool:
        try:
            if self.blob_path(digest).stat().st_size != size:
                return False  # damaged outside mldock: write it again
        except FileNotFoundError:
            return False
        self._count(blobs_reused=1)
        return True

    def _write_blob(self, source: IO[bytes]) -> tuple[str, int]:
        """Copy ``source`` into a new read-only blob named by the hash of the bytes copied."""
        with _staged(self.root / "tmp", "blob.", ".tmp") as (out, commit):
            digest, size = copy_hashing(source, out)
            commit(self.blob_path(digest), 0o444)
        self._count(bytes_sent=size, blobs_written=1)
        return digest, size

    def _store_stream(self, handle: IO[bytes]) -> tuple[str, int, bool]:
        """Store an open file's content once; return (sha256, size, whether bytes were copied).

        Hashed first, so known content costs no write; copied from the same handle, so what is
        read is the file that was opened (a tree's files are opened by :func:`open_entry`).
        """
        digest, size = sha256_stream(handle)
        if self._have_blob(digest, size):
            return digest, size, False
        handle.seek(0)
        digest, size = self._write_blob(handle)
        return digest, size, True

    def _store_bytes(self, data: bytes) -> str:
        digest = sha256_bytes(data)
        if not self._have_blob(digest, len(data)):
            digest, _ = self._write_blob(io.BytesIO(data))
        return digest

    def _read_blob(self, digest: str, key: str) -> bytes:
        """A small blob (a manifest) read whole and verified."""
        try:
            data = self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise self._missing_blob(key, digest) from None
        got = sha256_bytes(data)
        if got != digest:
            raise self._corrupt(key, digest, got)
        return data

    def _missing_blob(self, key: str, digest: str) -> MldockError:
        return MldockError(f"artifact {key!r}: its content {digest[:12]}… is missing from {self.uri}",
                           hint="the store was changed outside mldock; store the artifact again")

    def _corrupt(self, key: str, expected: str, got: str, part: str = "") -> MldockError:
        where = f" (file {part!r})" if part else ""
        return MldockError(
            f"artifact {key!r}{where} is corrupt: content hash {got[:12]}… does not match the"
            f" recorded {expected[:12]}…", hint="store the artifact again; nothing was written")

    def _fetch(self, digest: str, size: int, dest: Path, key: str, *, mode: int = 0o644,
               part: str = "") -> None:
        """Copy a blob to ``dest`` through a temp file, verifying hash and size before renaming."""
        try:
            source = open(self.blob_path(digest), "rb")  # noqa: SIM115 - entered below
        except FileNotFoundError:
            raise self._missing_blob(key, digest) from None
        with source, _staged(dest.parent, f".{dest.name}.", ".part") as (out, commit):
            got, got_size = copy_hashing(source, out)
            if got != digest or got_size != size:
                raise self._corrupt(key, digest, got, part)
            commit(dest, mode, durable=False)  # a fetched copy can be fetched again
        self._count(bytes_received=size)

    # --- references ---------------------------------------------------------------------------
    def _write_ref(self, key: str, digest: str, size: int, kind: str) -> ArtifactRef:
        body = {"format": 1, "key": key, "sha256": digest, "size": size, "kind": kind,
                "stored_at": time.time()}
        atomic_write_bytes(self._ref_path(key), json.dumps(body, sort_keys=True).encode())
        return ArtifactRef(key=key, uri=self.uri_for(key), sha256=digest, size=size, kind=kind)

    def _read_ref(self, key: str) -> dict[str, Any]:
        path = self._ref_path(key)
        try:
            body = json.loads(path.read_bytes())
            ok = (body["kind"] in ("file", "tree") and len(body["sha256"]) == 64
                  and isinstance(body["size"], int))
        except FileNotFoundError:
            raise NotFoundError(f"no artifact {key!r} in {self.uri}",
                                hint="check the key; stored keys are listed by the store") from None
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise MldockError(f"artifact {key!r}: its reference {path} is damaged",
                              hint="store the artifact again")
        return body

    def stat(self, key: str) -> ArtifactRef:
        """The reference stored under ``key``; raises NotFoundError if there is none."""
        body = self._read_ref(validate_key(key))
        return ArtifactRef(key=key, uri=self.uri_for(key), sha256=body["sha256"],
                           size=body["size"], kind=body["kind"])

    def _manifest(self, key: str, digest: str) -> Manifest:
        try:
            manifest = json.loads(self._read_blob(digest, key))
            for rel, entry in manifest.items():
                validate_key(rel, what="manifest path")
                if len(entry["sha256"]) != 64 or not isinstance(entry["size"], int):
                    raise ValueError(rel)
        except (ValueError, KeyError, TypeError, AttributeError, UsageError):
            raise MldockError(f"artifact {key!r}: its manifest is malformed or lists an unsafe"
                              " path", hint="store the artifact again") from None
        return manifest

    # --- the ArtifactStore interface ------------------------------------------------------------
    def put_file(self, source: Path, key: str, *, progress: ProgressSink = null_progress
                 ) -> ArtifactRef:
        key, source = validate_key(key), Path(source)
        if source.is_dir():
            raise UsageError(f"{source} is a folder: store folders with put_tree")
        if not source.is_file():
            raise NotFoundError(f"cannot store {key!r}: no file {source}")
        with self._os_errors(f"store {key!r}"), self._lock():
            with open(source, "rb") as handle:
                digest, size, copied = self._store_stream(handle)
            ref = self._write_ref(key, digest, size, "file")
        progress(f"stored {key} ({_human(size)}{'' if copied else ', unchanged content'})")
        return ref

    def get_file(self, key: str, dest: Path, *, progress: ProgressSink = null_progress) -> Path:
        key, dest = validate_key(key), Path(dest)
        with self._os_errors(f"read {key!r}", dest.parent), self._lock():
            body = self._read_ref(key)
            if body["kind"] != "file":
                raise UsageError(f"artifact {key!r} is a tree (a folder): fetch it with get_tree")
            if dest.is_dir():
                dest = dest / key.rsplit("/", 1)[-1]
            self._fetch(body["sha256"], body["size"], dest, key)
        progress(f"fetched {key} ({_human(body['size'])})")
        return dest

    def put_tree(self, source: Path, key: str, *, progress: ProgressSink = null_progress
                 ) -> ArtifactRef:
        key, source = validate_key(key), Path(source)
        if not source.is_dir():
            raise UsageError(f"cannot store tree {key!r}: {source} is not a folder")
        with self._os_errors(f"store {key!r}"), self._lock():
            files = walk_contained(source)  # links out, FIFOs, devices: refused, naming them
            progress(f"storing {key}: {len(files)} file(s)")
            manifest: Manifest = {}
            sent = 0
            for entry in files:
                with open_entry(entry) as handle:
                    digest, size, copied = self._store_stream(handle)
                manifest[entry.rel] = {"sha256": digest, "size": size, "mode": entry.mode}
                sent += size if copied else 0
            tree_digest = self._store_bytes(manifest_bytes(manifest))
            total = sum(entry["size"] for entry in manifest.values())
            ref = self._write_ref(key, tree_digest, total, "tree")  # last: now it is visible
        progress(f"stored {key} ({len(files)} file(s), {_human(total)}; {_human(sent)} new)")
        return ref

    def get_tree(self, key: str, dest: Path, *, progress: ProgressSink = null_progress) -> Path:
        key, dest = validate_key(key), Path(dest)
        if dest.exists() and not dest.is_dir():
            raise UsageError(f"cannot fetch tree {key!r} into {dest}: it is a file")
        with self._os_errors(f"read {key!r}", dest.parent), self._lock():
            body = self._read_ref(key)
            if body["kind"] != "tree":
                raise UsageError(f"artifact {key!r} is a single file: fetch it with get_file")
            manifest = self._manifest(key, body["sha256"])
            with staged_folder(dest) as target:  # renamed into place once every file verified
                for rel, entry in manifest.items():
                    path = target.joinpath(*rel.split("/"))
                    path.parent.mkdir(parents=True, exist_ok=True)
                    self._fetch(entry["sha256"], entry["size"], path, key,
                                mode=entry.get("mode", 0o644), part=rel)
        progress(f"fetched {key} ({len(manifest)} file(s), {_human(body['size'])})")
        return dest

    def exists(self, key: str) -> bool:
        return self._ref_path(validate_key(key)).is_file()

    def list(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix``, sorted. Like S3, ``prefix`` is a plain string prefix."""
        if prefix:
            validate_key(prefix.rstrip("/") or ".", what="prefix")
        refs = self.root / "refs"
        folder, _, head = prefix.rpartition("/")
        start = refs.joinpath(*folder.split("/")) if folder else refs
        keys = []
        for dirpath, dirnames, filenames in os.walk(start):
            if dirpath == str(start):
                dirnames[:] = [d for d in dirnames if d.startswith(head)]
            if REF_NAME in filenames:
                key = os.path.relpath(dirpath, refs).replace(os.sep, "/")
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        path = self._ref_path(validate_key(key))
        with self._os_errors(f"delete {key!r}"):
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
            used: set[str] = set()
            for key in self.list():
                body = self._read_ref(key)
                used.add(body["sha256"])
                if body["kind"] == "tree":
                    used.update(e["sha256"] for e in self._manifest(key, body["sha256"]).values())
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
