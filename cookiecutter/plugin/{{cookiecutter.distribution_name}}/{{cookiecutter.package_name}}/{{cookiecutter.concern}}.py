"""{{ cookiecutter.__class_name }}: artifacts in a folder named by a ``{{ cookiecutter.uri_scheme }}://`` URI.

A worked example, complete enough to pass mldock's conformance kit
(:class:`mldock.testing.ArtifactStoreContract`). To put your own service behind it, replace the
``_remote_*`` methods (the only ones touching the folder) with calls to its SDK or API, and keep
the rest, which is what the contract checks:

* **content-addressed**: contents are stored as blobs named by their SHA-256; a blob that is
  already there is never sent again;
* **atomic**: blobs first, the key's reference last, each written under a temporary name and
  renamed into place, so a reader sees a whole artifact or none;
* **verified reads**: bytes are hashed as they arrive; a mismatch raises and leaves ``dest`` alone.

Layout under the root folder::

    blobs/<sha256>        file contents (and tree manifests)
    refs/<key>/.ref       {"kind": "file"|"tree", "sha256": ..., "size": ...}
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from mldock import ArtifactStore
from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.interfaces import ArtifactRef, HealthCheck, ProgressSink, null_progress
from mldock.local.hashing import (
    CHUNK_SIZE,
    copy_hashing,
    hash_tree,
    manifest_bytes,
    sha256_and_size,
)

SCHEME = "{{ cookiecutter.uri_scheme }}"
REF = ".ref"
KEY_HINT = "use a relative '/'-separated path such as 'models/iris', without '..' or empty parts"


@dataclass
class Stats:
    """What this store object really transferred: shows content addressing at work."""

    bytes_sent: int = 0
    bytes_received: int = 0
    blobs_written: int = 0
    blobs_reused: int = 0


def validate_key(key: str) -> str:
    """``key`` if it is a safe relative ``/``-separated path, else a UsageError."""
    if not isinstance(key, str):
        raise UsageError(f"invalid artifact key {key!r}: not a string", hint=KEY_HINT)
    parts = key.split("/")
    if (not key or key.startswith("/") or "\\" in key or any(ord(c) < 32 for c in key)
            or any(p in ("", ".", "..") or p.startswith(REF) for p in parts)):
        raise UsageError(f"invalid artifact key {key!r}", hint=KEY_HINT)
    return key


class {{ cookiecutter.__class_name }}(ArtifactStore):
    """Artifacts under ``root`` (see the module docstring).

    Args:
        root: the store's folder; created on the first write.
        fsync: flush files to disk before they become visible.
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True):
        self.root = Path(os.path.abspath(os.path.expanduser(os.fspath(root))))
        self.uri = f"{SCHEME}://{self.root.as_posix()}"
        self.fsync = fsync
        self.stats = Stats()

    @classmethod
    def from_uri(cls, uri: str, *, base_dir: str | os.PathLike[str] | None = None,
                 options: Any = None) -> {{ cookiecutter.__class_name }}:
        """``{{ cookiecutter.uri_scheme }}:///abs/path`` or ``{{ cookiecutter.uri_scheme }}://rel/path`` (relative to ``base_dir``)."""
        parts = urlsplit(uri)
        if parts.scheme != SCHEME:
            raise UsageError(f"not a {SCHEME}:// URI: {uri!r}")
        path = Path(unquote(parts.netloc + parts.path)).expanduser()
        if not str(path) or str(path) == ".":
            raise UsageError(f"invalid storage URI {uri!r}: no folder given",
                             hint=f"use e.g. '{SCHEME}:///srv/artifacts'")
        if not path.is_absolute():
            path = Path(base_dir if base_dir is not None else Path.cwd()) / path
        return cls(path, fsync=getattr(options, "fsync", True))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    # --- the interface ------------------------------------------------------------------------
    def put_file(self, source: Path, key: str, *, progress: ProgressSink = null_progress
                 ) -> ArtifactRef:
        validate_key(key)
        source = Path(source)
        if not source.is_file():
            raise NotFoundError(f"cannot store {key!r}: no file {source}")
        digest, size = self._send_file(source)
        self._remote_write_ref(key, {"kind": "file", "sha256": digest, "size": size})
        progress(f"{key}: {size} bytes")
        return ArtifactRef(key=key, uri=self.uri_for(key), sha256=digest, size=size, kind="file")

    def get_file(self, key: str, dest: Path, *, progress: ProgressSink = null_progress) -> Path:
        ref = self._ref(key)
        if ref["kind"] != "file":
            raise UsageError(f"artifact {key!r} is a tree (a folder): fetch it with get_tree")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._fetch_to(ref["sha256"], dest, key)
        progress(f"{key}: {ref['size']} bytes")
        return dest

    def put_tree(self, source: Path, key: str, *, progress: ProgressSink = null_progress
                 ) -> ArtifactRef:
        validate_key(key)
        source = Path(source)
        if not source.is_dir():
            raise UsageError(f"cannot store tree {key!r}: {source} is not a folder")
        manifest, _ = hash_tree(source)
        for rel, entry in manifest.items():
            stored, _ = self._send_file(source / rel)
            entry["sha256"] = stored  # the bytes actually stored, even if the file just changed
        data = manifest_bytes(manifest)
        digest = self._send_bytes(data)
        size = sum(entry["size"] for entry in manifest.values())
        self._remote_write_ref(key, {"kind": "tree", "sha256": digest, "size": size})
        progress(f"{key}: {len(manifest)} files, {size} bytes")
        return ArtifactRef(key=key, uri=self.uri_for(key), sha256=digest, size=size, kind="tree")

    def get_tree(self, key: str, dest: Path, *, progress: ProgressSink = null_progress) -> Path:
        ref = self._ref(key)
        if ref["kind"] != "tree":
            raise UsageError(f"artifact {key!r} is a single file: fetch it with get_file")
        dest = Path(dest)
        if dest.exists() and not dest.is_dir():
            raise UsageError(f"cannot fetch tree {key!r} into {dest}: it is a file")
        manifest = self._manifest(key, ref["sha256"])
        for rel, entry in manifest.items():
            target = dest.joinpath(*rel.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            self._fetch_to(entry["sha256"], target, f"{key}/{rel}")
            os.chmod(target, int(entry.get("mode", 0o644)) & 0o777)
        dest.mkdir(parents=True, exist_ok=True)
        progress(f"{key}: {len(manifest)} files")
        return dest

    def exists(self, key: str) -> bool:
        return self._remote_read_ref(validate_key(key)) is not None

    def list(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self._remote_list_refs() if k.startswith(prefix))

    def delete(self, key: str) -> None:
        self._remote_delete_ref(validate_key(key))

    def check(self) -> list[HealthCheck]:
        """For ``mldock doctor``: can this store write where it points?"""
        name = f"storage {SCHEME}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".check."):
                pass
        except OSError as exc:
            return [HealthCheck(name, False, f"{self.root}: {exc.strerror or exc}",
                                "make sure the folder exists and is writable")]
        return [HealthCheck(name, True, str(self.root))]

    # --- shared logic -------------------------------------------------------------------------
    def _ref(self, key: str) -> dict[str, Any]:
        ref = self._remote_read_ref(validate_key(key))
        if ref is None:
            raise NotFoundError(f"no artifact {key!r} in {self.uri}")
        return ref

    def _send_file(self, path: Path) -> tuple[str, int]:
        digest, size = sha256_and_size(path)
        if self._remote_has_blob(digest):
            self.stats.blobs_reused += 1
            return digest, size
        with open(path, "rb") as handle:
            return self._remote_put_blob(handle)

    def _send_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if self._remote_has_blob(digest):
            self.stats.blobs_reused += 1
            return digest
        stored, _ = self._remote_put_blob(io.BytesIO(data))
        return stored

    def _fetch_to(self, digest: str, dest: Path, what: str) -> None:
        """Download blob ``digest`` to ``dest`` via a temp file; replace ``dest`` only if intact."""
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                got = hashlib.sha256()
                for chunk in self._remote_read_blob(digest, what):
                    got.update(chunk)
                    out.write(chunk)
                    self.stats.bytes_received += len(chunk)
            if got.hexdigest() != digest:
                raise MldockError(f"artifact {what!r} is corrupt: expected sha256 {digest},"
                                  f" got {got.hexdigest()}", hint="store it again")
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _manifest(self, key: str, digest: str) -> dict[str, dict[str, Any]]:
        data = b"".join(self._remote_read_blob(digest, key))
        if hashlib.sha256(data).hexdigest() != digest:
            raise MldockError(f"artifact {key!r} is corrupt: its manifest does not match its hash")
        manifest = json.loads(data)
        for rel in manifest:
            if rel.startswith("/") or any(p in ("", ".", "..") for p in rel.split("/")):
                raise MldockError(f"artifact {key!r}: its manifest lists an unsafe path {rel!r}")
        return manifest

    # --- the remote side: replace these with your service's calls ----------------------------
    def _blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / digest

    def _ref_path(self, key: str) -> Path:
        return self.root.joinpath("refs", *key.split("/"), REF)

    def _remote_has_blob(self, digest: str) -> bool:
        return self._blob_path(digest).is_file()

    def _remote_put_blob(self, source: IO[bytes]) -> tuple[str, int]:
        """Store a stream as a blob named by the hash of the bytes actually copied."""
        folder = self.root / "blobs"
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".upload.", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                digest, size = copy_hashing(source, out)
                self._flush(out)
            os.replace(tmp, self._blob_path(digest))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.stats.bytes_sent += size
        self.stats.blobs_written += 1
        return digest, size

    def _remote_read_blob(self, digest: str, what: str) -> Iterator[bytes]:
        path = self._blob_path(digest)
        if not path.is_file():
            raise MldockError(f"artifact {what!r} is damaged: its content {digest} is missing",
                              hint="store it again")
        with open(path, "rb") as handle:
            yield from iter(lambda: handle.read(CHUNK_SIZE), b"")

    def _remote_write_ref(self, key: str, ref: dict[str, Any]) -> None:
        path = self._ref_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".ref.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(ref, out, sort_keys=True)
                self._flush(out)
            os.replace(tmp, path)  # the moment the artifact becomes visible
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _remote_read_ref(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._ref_path(key).read_text("utf-8"))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _remote_delete_ref(self, key: str) -> None:
        path = self._ref_path(key)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            path.unlink()
        refs, folder = self.root / "refs", path.parent
        while folder != refs:  # drop folders left empty
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent

    def _remote_list_refs(self) -> list[str]:
        refs = self.root / "refs"
        return [os.path.relpath(dirpath, refs).replace(os.sep, "/")
                for dirpath, _, files in os.walk(refs) if REF in files]

    def _flush(self, handle: IO[Any]) -> None:
        if self.fsync:
            handle.flush()
            os.fsync(handle.fileno())


__all__ = ["{{ cookiecutter.__class_name }}", "Stats", "validate_key"]
