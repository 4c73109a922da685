"""The ``s3://`` artifact store: content-addressed blobs, manifests and references in a bucket.

Layout under ``s3://bucket/prefix/`` (the local store's, so either can be copied onto the other)::

    blobs/sha256/ab/cdef…       file contents and tree manifests, named by their SHA-256
    refs/<key>/.mldock-ref      {"sha256", "size", "kind", …}: what a key points at

* **Never sent twice.** A file is hashed first, then its blob is looked for (HEAD) and uploaded only
  if absent. A tree skips even the lookups when it can: if its manifest blob exists, every blob the
  manifest names was stored before it (manifests are written after their files); and the blobs of
  the manifest the key pointed at before are known to exist. So re-pushing an unchanged tree costs
  one HEAD and one PUT; changing one file costs about that file.
* **Atomic.** An S3 object appears whole or not at all (a multipart upload is invisible until
  completed). Blobs go first, then the manifest, then the reference: the reference is the only
  thing :meth:`exists`, :meth:`list` and the getters look at, so an interrupted upload leaves only
  unreferenced blobs (a retry reuses them and sends the rest) and concurrent writers of one key
  each publish a complete tree, the last reference written winning.
* **Verified reads.** Every byte fetched is hashed before it is renamed into place; a mismatch is
  an error naming the key and leaves nothing at the destination.
"""

from __future__ import annotations

import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.interfaces import ArtifactRef, ArtifactStore, HealthCheck, ProgressSink, null_progress
from mldock.local.hashing import Manifest, manifest_bytes, sha256_bytes, sha256_stream
from mldock.local.storage import REF_NAME, staged_folder, validate_key
from mldock.trees import TreeEntry, open_entry, walk_contained

from mldock_s3.client import S3Connection, connect
from mldock_s3.config import S3Options
from mldock_s3.errors import describe
from mldock_s3.location import S3Location
from mldock_s3.progress import TransferProgress, human
from mldock_s3.refs import parse_manifest, parse_ref, ref_body, ref_suffix
from mldock_s3.transfer import BlobMover, Source, Stats

HASH_THREADS = min(4, os.cpu_count() or 1)


class S3ArtifactStore(ArtifactStore):
    """Artifacts under ``s3://bucket/prefix`` (see the module docstring for the guarantees).

    Args:
        uri: ``s3://bucket`` or ``s3://bucket/prefix``.
        options: ``[storage.s3]``; ``None`` uses boto3's defaults and the AWS chain.

    The boto3 client is created on first use, so building a store (e.g. to print its URI) costs
    nothing and fails on nothing.
    """

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

    # --- keys ---------------------------------------------------------------------------------
    def ref_key(self, key: str) -> str:
        """The object key of ``key``'s reference."""
        return self.location.key("refs", key, REF_NAME)

    def blob_key(self, digest: str) -> str:
        """The object key of the blob ``digest`` (for tools and tests)."""
        return self.location.key("blobs", "sha256", digest[:2], digest[2:])

    # --- references ---------------------------------------------------------------------------
    def _read_ref(self, key: str, action: str) -> dict | None:
        data = self.blobs.get_bytes(self.ref_key(key), action=action)
        return None if data is None else parse_ref(data, key, f"s3://{self.location.bucket}/"
                                                   f"{self.ref_key(key)}")

    def _require_ref(self, key: str, action: str) -> dict:
        body = self._read_ref(key, action)
        if body is None:
            raise NotFoundError(f"no artifact {key!r} in {self.uri}",
                                hint="check the key; stored keys are listed by the store")
        return body

    def _write_ref(self, key: str, digest: str, size: int, kind: str) -> ArtifactRef:
        self.blobs.put_bytes(self.ref_key(key), ref_body(key, digest, size, kind),
                             content_type="application/json", action=f"publish {key!r}")
        return ArtifactRef(key=key, uri=self.uri_for(key), sha256=digest, size=size, kind=kind)

    def stat(self, key: str) -> ArtifactRef:
        """The reference stored under ``key``; raises NotFoundError if there is none."""
        body = self._require_ref(validate_key(key), f"read {key!r}")
        return ArtifactRef(key=key, uri=self.uri_for(key), sha256=body["sha256"],
                           size=body["size"], kind=body["kind"])

    def _manifest(self, key: str, digest: str) -> Manifest:
        data = self.blobs.get_bytes(self.blob_key(digest), action=f"read {key!r}")
        if data is None:
            raise self._missing(key, digest)
        if sha256_bytes(data) != digest:
            raise self._corrupt(key, digest, sha256_bytes(data))
        return parse_manifest(data, key)

    def _known_blobs(self, key: str) -> set[str]:
        """Blobs the tree currently under ``key`` uses: they exist, no need to look them up."""
        try:
            body = self._read_ref(key, f"store {key!r}")
            if body is None or body["kind"] != "tree":
                return set()
            return {entry["sha256"] for entry in self._manifest(key, body["sha256"]).values()}
        except NotFoundError:
            raise
        except MldockError:
            return set()  # a damaged old version: look every blob up instead

    # --- errors -------------------------------------------------------------------------------
    def _missing(self, key: str, digest: str) -> MldockError:
        return MldockError(f"artifact {key!r}: its content {digest[:12]}… is missing from {self.uri}",
                           hint="the bucket was changed outside mldock; store the artifact again")

    def _corrupt(self, key: str, expected: str, got: str, part: str = "") -> MldockError:
        where = f" (file {part!r})" if part else ""
        return MldockError(
            f"artifact {key!r}{where} is corrupt: content hash {got[:12]}… does not match the"
            f" recorded {expected[:12]}…", hint="store the artifact again; nothing was written")

    def _on_bad(self, key: str, parts: dict[Path, str] | None = None):
        def build(digest: str, dest: Path, got: str) -> MldockError:
            part = (parts or {}).get(dest, "")
            return (self._missing(key, digest) if got == "missing"
                    else self._corrupt(key, digest, got, part))
        return build

    # --- files --------------------------------------------------------------------------------
    def put_file(self, source: Path, key: str, *, progress: ProgressSink = null_progress
                 ) -> ArtifactRef:
        key, source = validate_key(key), Path(source)
        if source.is_dir():
            raise UsageError(f"{source} is a folder: store folders with put_tree")
        if not source.is_file():
            raise NotFoundError(f"cannot store {key!r}: no file {source}")
        action = f"store {key!r}"
        try:
            item = Source.hash(source)
        except OSError as exc:
            raise describe(exc, action=action, bucket=self.location.bucket) from exc
        send = self.blobs.missing([item], set(), action)
        meter = TransferProgress(progress, "uploading", key, item.size if send else 0)
        self.blobs.upload(send, action=action, progress=meter)
        ref = self._write_ref(key, item.sha256, item.size, "file")
        progress(f"stored {key} ({human(item.size)}{'' if send else ', unchanged content'})")
        return ref

    def get_file(self, key: str, dest: Path, *, progress: ProgressSink = null_progress) -> Path:
        key, dest = validate_key(key), Path(dest)
        action = f"read {key!r}"
        body = self._require_ref(key, action)
        if body["kind"] != "file":
            raise UsageError(f"artifact {key!r} is a tree (a folder): fetch it with get_tree")
        if dest.is_dir():
            dest = dest / key.rsplit("/", 1)[-1]
        meter = TransferProgress(progress, "downloading", key, body["size"])
        self.blobs.download([(body["sha256"], body["size"], dest, 0o644)], action=action,
                            progress=meter, on_bad=self._on_bad(key))
        progress(f"fetched {key} ({human(body['size'])})")
        return dest

    # --- trees --------------------------------------------------------------------------------
    def put_tree(self, source: Path, key: str, *, progress: ProgressSink = null_progress
                 ) -> ArtifactRef:
        key, source = validate_key(key), Path(source)
        if not source.is_dir():
            raise UsageError(f"cannot store tree {key!r}: {source} is not a folder")
        action = f"store {key!r}"
        try:
            files = _hash_files(walk_contained(source))  # refuses links out, FIFOs, devices
        except OSError as exc:
            raise describe(exc, action=action, bucket=self.location.bucket) from exc
        manifest: Manifest = {rel: {"sha256": item.sha256, "size": item.size, "mode": mode}
                              for rel, item, mode in files}
        data = manifest_bytes(manifest)
        tree_digest = sha256_bytes(data)
        total = sum(entry["size"] for entry in manifest.values())
        progress(f"storing {key}: {len(files)} file(s), {human(total)}")
        sent = 0
        # A stored manifest means all its blobs were stored before it: nothing else to check.
        with self.blobs.errors(action):
            stored = self.blobs.has_blob(tree_digest, len(data))
        if stored:
            self.blobs.count(blobs_reused=len(files) + 1)
        else:
            send = self.blobs.missing([item for _, item, _ in files], self._known_blobs(key),
                                      action)
            sent = sum(item.size for item in send)
            self.blobs.upload(send, action=action,
                              progress=TransferProgress(progress, "uploading", key, sent))
            self.blobs.put_bytes(self.blob_key(tree_digest), data,
                                 content_type="application/json", action=action)
            self.blobs.count(bytes_sent=len(data), blobs_written=1)
        ref = self._write_ref(key, tree_digest, total, "tree")  # last: now it is visible
        progress(f"stored {key} ({len(files)} file(s), {human(total)}; {human(sent)} new)")
        return ref

    def get_tree(self, key: str, dest: Path, *, progress: ProgressSink = null_progress) -> Path:
        key, dest = validate_key(key), Path(dest)
        if dest.exists() and not dest.is_dir():
            raise UsageError(f"cannot fetch tree {key!r} into {dest}: it is a file")
        action = f"read {key!r}"
        body = self._require_ref(key, action)
        if body["kind"] != "tree":
            raise UsageError(f"artifact {key!r} is a single file: fetch it with get_file")
        manifest = self._manifest(key, body["sha256"])
        with staged_folder(dest) as target:  # renamed into place once every file is verified
            items, parts = [], {}
            for rel, entry in manifest.items():
                path = target.joinpath(*rel.split("/"))
                items.append((entry["sha256"], entry["size"], path, entry.get("mode", 0o644)))
                parts[path] = rel
            meter = TransferProgress(progress, "downloading", key, body["size"])
            self.blobs.download(items, action=action, progress=meter,
                                on_bad=self._on_bad(key, parts))
        progress(f"fetched {key} ({len(manifest)} file(s), {human(body['size'])})")
        return dest

    # --- listing and deleting -------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        return self._read_ref(validate_key(key), f"look up {key!r}") is not None

    def list(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix``, sorted. Like S3, ``prefix`` is a plain string prefix."""
        if prefix:
            validate_key(prefix.rstrip("/") or ".", what="prefix")
        refs = self.location.key("refs") + "/"
        suffix = ref_suffix()
        keys = []
        with self.blobs.errors("list artifacts", "refs"):
            pages = self.connection.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=refs + prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(refs):]
                    if name.endswith(suffix):
                        key = name[:-len(suffix)]
                        if key.startswith(prefix):
                            keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        """Remove the reference; blobs stay (other artifacts may share them)."""
        key = validate_key(key)
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


def _hash_files(files: list[TreeEntry]) -> list[tuple[str, Source, int]]:
    """``(relpath, Source, mode)`` of every file, hashed on a few threads (hashlib releases the
    GIL, so several big files hash in parallel). Each is opened by :func:`open_entry`, so what
    is hashed is the regular file the walk checked; its ``path`` is that real file (links
    resolved), which the upload then reads."""
    def one(entry: TreeEntry) -> tuple[str, Source, int]:
        with open_entry(entry) as handle:
            before = os.fstat(handle.fileno())
            digest, size = sha256_stream(handle)
        return entry.rel, Source(entry.path, digest, size,
                                 (before.st_size, before.st_mtime_ns)), entry.mode

    if len(files) < 2:
        return [one(item) for item in files]
    with ThreadPoolExecutor(max_workers=min(HASH_THREADS, len(files)),
                            thread_name_prefix="mldock-s3-hash") as pool:
        return list(pool.map(one, files))
