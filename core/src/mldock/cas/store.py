"""The base class of every content-addressed artifact store: the semantics in one place.

A backend subclasses :class:`ContentAddressedStore` and implements primitives only: whether a
blob exists, send one, fetch one (streamed, size and SHA-256 known), and put/get/list/delete the
small reference objects. Everything a user relies on is here, once:

* **keys** are validated before any I/O (:func:`~mldock.cas.layout.validate_key`);
* **never sent twice**: a file is hashed first and its blob sent only if absent. A tree skips even
  the lookups when it can: if its manifest blob exists, every blob it names was stored before it
  (manifests are written after their files); the blobs of the manifest the key pointed at before
  are known to exist. Re-storing an unchanged tree costs one lookup and one reference;
* **atomic publication**: blobs, then the manifest, then the reference, the only thing
  :meth:`exists`, :meth:`list` and the getters look at. An interrupted put leaves unreferenced blobs
  only (a retry reuses them); concurrent writers of one key each publish a complete artifact;
* **verified, staged reads**: every byte fetched lands in a temp file beside its destination and is
  renamed into place only once its SHA-256 and size match; a tree appears whole or not at all;
* **model folders** are walked with :func:`mldock.trees.walk_contained` (links out of the folder,
  FIFOs and devices refused, naming the entry);
* **one set of error texts** (:mod:`mldock.cas.layout`) and **progress** lines.

Batch methods (:meth:`missing_blobs`, :meth:`put_blobs`, :meth:`get_blobs`) have serial defaults;
a remote backend overrides them to work in parallel.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from abc import abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mldock.cas import layout
from mldock.cas.hashing import Manifest, manifest_bytes, sha256_bytes
from mldock.cas.items import (
    BlobDownload,
    BlobSource,
    hash_entries,
    staged_download,
    staged_folder,
)
from mldock.cas.progress import TransferProgress, human
from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.interfaces import ArtifactRef, ArtifactStore, ProgressSink, null_progress
from mldock.trees import walk_contained


@dataclass
class StoreStats:
    """What one store object really moved: for users, benchmarks and the conformance kit."""

    bytes_sent: int = 0
    bytes_received: int = 0
    blobs_written: int = 0
    blobs_reused: int = 0


class ContentAddressedStore(ArtifactStore):
    """An :class:`~mldock.interfaces.ArtifactStore` in the layout of :mod:`mldock.cas.layout`.

    Subclasses set ``self.uri`` and ``self.stats`` (a :class:`StoreStats`, or a subclass with more
    counters) and implement the primitives below.
    """

    uri: str
    stats: StoreStats

    # --- primitives a backend implements ----------------------------------------------------------
    @abstractmethod
    def has_blob(self, digest: str, size: int) -> bool:
        """Whether the blob is stored with this size (a wrong size counts as absent)."""

    @abstractmethod
    def put_blob(self, source: BlobSource, meter: TransferProgress) -> None:
        """Store ``source`` as blob ``source.sha256``, visible whole or not at all.

        Raise :func:`~mldock.cas.layout.changed` (and leave no blob under that name) when the bytes
        read do not hash to ``source.sha256``. Call ``meter.add(n)`` as bytes go.
        """

    @abstractmethod
    def get_blob(self, download: BlobDownload, meter: TransferProgress) -> None:
        """Write blob ``download.sha256`` through ``download.open()`` (or into ``download.temp``).

        Raise :class:`~mldock.cas.layout.BlobMissingError` when it is absent. The base verifies.
        """

    @abstractmethod
    def put_ref(self, key: str, data: bytes) -> None:
        """Write the reference of ``key`` atomically (replacing any)."""

    @abstractmethod
    def get_ref(self, key: str) -> bytes | None:
        """The reference of ``key``, or None when there is none."""

    @abstractmethod
    def list_refs(self, prefix: str) -> Iterable[str]:
        """Keys with a reference that start with ``prefix`` (extra keys are filtered out)."""

    @abstractmethod
    def delete_ref(self, key: str) -> None:
        """Remove the reference of ``key``; a missing one is not an error."""

    # --- hooks with defaults ----------------------------------------------------------------------
    def guard(self, action: str, where: Path | None = None
              ) -> contextlib.AbstractContextManager[Any]:
        """Wraps every operation: translate backend errors, take locks. ``where`` is a local
        folder being written to (a fetch's destination), if any."""
        return contextlib.nullcontext()

    def ref_location(self, key: str) -> str:
        """How messages name the reference of ``key``."""
        return f"{self.uri.rstrip('/')}/{layout.ref_name(key)}"

    def missing_blobs(self, sources: list[BlobSource]) -> list[BlobSource]:
        """The sources whose blob is absent (``sources`` has one per digest)."""
        return [s for s in sources if not self.has_blob(s.sha256, s.size)]

    def put_blobs(self, sources: list[BlobSource], meter: TransferProgress) -> None:
        """Store every source (default: one after the other)."""
        for source in sources:
            self.put_blob(source, meter)

    def get_blobs(self, downloads: list[BlobDownload], meter: TransferProgress) -> None:
        """Fetch every download (default: one after the other)."""
        for download in downloads:
            self.get_blob(download, meter)

    def get_small_blob(self, digest: str) -> bytes | None:
        """A small blob's bytes (a manifest), or None when absent; the base verifies them.

        Default: through :meth:`get_blob` into a temp folder; a remote backend may use one GET.
        """
        with tempfile.TemporaryDirectory(prefix="mldock-cas-") as folder:
            download = BlobDownload(digest, -1, Path(folder) / "blob")
            try:
                self.get_blob(download, TransferProgress(null_progress, "", "", 0))
            except layout.BlobMissingError:
                return None
            return download.temp.read_bytes()

    # --- shared machinery -------------------------------------------------------------------------
    def read_blob(self, key: str, digest: str) -> bytes:
        """A small blob of artifact ``key``, whole and verified."""
        data = self.get_small_blob(digest)
        if data is None:
            raise layout.missing_blob(key, digest, self.uri)
        got = sha256_bytes(data)
        if got != digest:
            raise layout.corrupt(key, digest, got)
        return data

    def count(self, **deltas: int) -> None:
        """Add to :attr:`stats` (thread-safe)."""
        lock = self.__dict__.setdefault("_stats_lock", threading.Lock())
        with lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def _ref(self, key: str) -> dict[str, Any] | None:
        data = self.get_ref(key)
        return None if data is None else layout.parse_ref(data, key, self.ref_location(key))

    def _require_ref(self, key: str, kind: str | None = None) -> dict[str, Any]:
        body = self._ref(key)
        if body is None:
            raise layout.not_found(key, self.uri)
        if kind is not None and body["kind"] != kind:
            raise layout.wrong_kind(key, body["kind"])
        return body

    def _manifest(self, key: str, digest: str) -> Manifest:
        return layout.parse_manifest(self.read_blob(key, digest), key)

    def _publish(self, key: str, digest: str, size: int, kind: str) -> ArtifactRef:
        self.put_ref(key, layout.ref_body(key, digest, size, kind))
        return ArtifactRef(key=key, uri=self.uri_for(key), sha256=digest, size=size, kind=kind)

    def _send(self, sources: list[BlobSource], meter: TransferProgress) -> None:
        self.put_blobs(sources, meter)
        self.count(blobs_written=len(sources), bytes_sent=sum(s.size for s in sources))

    def _fetch(self, key: str, downloads: list[BlobDownload], meter: TransferProgress) -> None:
        """Fetch, verify every download, then rename the files into place."""
        try:
            self.get_blobs(downloads, meter)
        except layout.BlobMissingError as exc:
            raise layout.missing_blob(key, exc.digest, self.uri) from None
        for download in downloads:
            ok, got = download.matches()
            if not ok:
                raise layout.corrupt(key, download.sha256, got, download.part)
        for download in downloads:
            download.commit()
            self.count(bytes_received=max(download.size, 0))

    def _known_blobs(self, key: str) -> set[str]:
        """Blobs the tree now under ``key`` uses: they exist, no need to look them up."""
        try:
            body = self._ref(key)
            if body is None or body["kind"] != "tree":
                return set()
            return {entry["sha256"] for entry in self._manifest(key, body["sha256"]).values()}
        except NotFoundError:
            raise
        except MldockError:
            return set()  # a damaged old version: look every blob up instead

    def _unique_missing(self, sources: list[BlobSource], known: set[str]) -> list[BlobSource]:
        unique: dict[str, BlobSource] = {}
        for source in sources:
            unique.setdefault(source.sha256, source)
        unknown = [s for d, s in unique.items() if d not in known]
        missing = self.missing_blobs(unknown) if unknown else []
        self.count(blobs_reused=len(unknown) - len(missing))
        return missing

    # --- the ArtifactStore interface --------------------------------------------------------------
    def put_file(self, source: Path, key: str, *, progress: ProgressSink = null_progress
                 ) -> ArtifactRef:
        key, source = layout.validate_key(key), Path(source)
        if source.is_dir():
            raise UsageError(f"{source} is a folder: store folders with put_tree")
        if not source.is_file():
            raise NotFoundError(f"cannot store {key!r}: no file {source}")
        with self.guard(f"store {key!r}"):
            item = BlobSource.of_file(source)
            send = self._unique_missing([item], set())
            self._send(send, TransferProgress(progress, "uploading", key, item.size if send else 0))
            ref = self._publish(key, item.sha256, item.size, "file")
        progress(f"stored {key} ({human(item.size)}{'' if send else ', unchanged content'})")
        return ref

    def get_file(self, key: str, dest: Path, *, progress: ProgressSink = null_progress) -> Path:
        key, dest = layout.validate_key(key), Path(dest)
        with self.guard(f"read {key!r}", dest.parent):
            body = self._require_ref(key, "file")
            if dest.is_dir():
                dest = dest / key.rsplit("/", 1)[-1]
            meter = TransferProgress(progress, "downloading", key, body["size"])
            with staged_download(body["sha256"], body["size"], dest) as download:
                self._fetch(key, [download], meter)
        progress(f"fetched {key} ({human(body['size'])})")
        return dest

    def put_tree(self, source: Path, key: str, *, progress: ProgressSink = null_progress
                 ) -> ArtifactRef:
        key, source = layout.validate_key(key), Path(source)
        if not source.is_dir():
            raise UsageError(f"cannot store tree {key!r}: {source} is not a folder")
        with self.guard(f"store {key!r}"):
            files = hash_entries(walk_contained(source))  # links out, FIFOs, devices: refused
            manifest: Manifest = {f.rel: {"sha256": f.sha256, "size": f.size, "mode": f.mode}
                                  for f in files}
            tree = BlobSource.of_bytes(manifest_bytes(manifest))
            total = sum(f.size for f in files)
            progress(f"storing {key}: {len(files)} file(s), {human(total)}")
            sent = 0
            if self.has_blob(tree.sha256, tree.size):  # its files were all stored before it
                self.count(blobs_reused=len(files) + 1)
            else:
                send = self._unique_missing(files, self._known_blobs(key))
                sent = sum(s.size for s in send)
                self._send(send, TransferProgress(progress, "uploading", key, sent))
                self._send([tree], TransferProgress(null_progress, "", "", 0))
            ref = self._publish(key, tree.sha256, total, "tree")  # last: now it is visible
        progress(f"stored {key} ({len(files)} file(s), {human(total)}; {human(sent)} new)")
        return ref

    def get_tree(self, key: str, dest: Path, *, progress: ProgressSink = null_progress) -> Path:
        key, dest = layout.validate_key(key), Path(dest)
        if dest.exists() and not dest.is_dir():
            raise UsageError(f"cannot fetch tree {key!r} into {dest}: it is a file")
        with self.guard(f"read {key!r}", dest.parent):
            body = self._require_ref(key, "tree")
            manifest = self._manifest(key, body["sha256"])
            meter = TransferProgress(progress, "downloading", key, body["size"])
            with staged_folder(dest) as target, contextlib.ExitStack() as stack:
                downloads = [stack.enter_context(staged_download(
                    entry["sha256"], entry["size"], target.joinpath(*rel.split("/")),
                    mode=entry.get("mode", 0o644), part=rel)) for rel, entry in manifest.items()]
                self._fetch(key, downloads, meter)  # renamed into place once all verified
        progress(f"fetched {key} ({len(manifest)} file(s), {human(body['size'])})")
        return dest

    def stat(self, key: str) -> ArtifactRef:
        """The reference stored under ``key``; raises NotFoundError if there is none."""
        key = layout.validate_key(key)
        with self.guard(f"read {key!r}"):
            body = self._require_ref(key)
        return ArtifactRef(key=key, uri=self.uri_for(key), sha256=body["sha256"],
                           size=body["size"], kind=body["kind"])

    def tree_files(self, key: str) -> Manifest:
        """The files of the tree stored under ``key`` (relative path → ``sha256``, ``size``,
        ``mode``), read from its manifest without fetching a file (``mldock ui`` lists a model's
        files so). Raises NotFoundError if there is no tree under ``key``."""
        key = layout.validate_key(key)
        with self.guard(f"read {key!r}"):
            body = self._require_ref(key, "tree")
            return self._manifest(key, body["sha256"])

    def exists(self, key: str) -> bool:
        key = layout.validate_key(key)
        with self.guard(f"look up {key!r}"):
            return self._ref(key) is not None

    def list(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix``, sorted. Like S3, ``prefix`` is a plain string prefix."""
        layout.validate_prefix(prefix)
        with self.guard("list artifacts"):
            return sorted({k for k in self.list_refs(prefix) if k.startswith(prefix)})

    def delete(self, key: str) -> None:
        """Remove the reference; blobs stay (other artifacts may share them)."""
        key = layout.validate_key(key)
        with self.guard(f"delete {key!r}"):
            self.delete_ref(key)

    def blobs_used(self) -> Iterator[str]:
        """Every blob some reference needs (references, manifests and their files), for gc."""
        for key in sorted(self.list_refs("")):  # not list(): gc holds the lock guard() takes
            body = self._require_ref(key)
            yield body["sha256"]
            if body["kind"] == "tree":
                yield from (e["sha256"] for e in self._manifest(key, body["sha256"]).values())
