"""Input data from plain blobs (``[data] train = "az://datasets/iris"``).

Unlike artifacts, data sets are ordinary blobs written by other tools, so there is no SHA-256
to check against. What Blob Storage gives is each blob's size, ETag and (when the writer sent or
the service computed one) ``Content-MD5``, all in the listing:

* ``az://container/path/file.csv`` (a blob) lands as ``dest/file.csv``; ``az://container/path``
  with no such blob is a folder, and every blob under ``path/`` lands at its relative path.
* A re-fetch compares each blob's ETag and size with what was fetched last time (kept beside
  ``dest`` in ``<dest>.mldock-fetch.json``, never inside the data) and downloads only what changed;
  files whose blob disappeared are removed, so ``dest`` mirrors the folder.
* Each download goes to a temp file pinned to the listed ETag (``If-Match``: a blob replaced
  mid-way fails instead of mixing versions); its size and, where Azure has one, its MD5 are
  checked before it is renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mldock.cas import CHUNK_SIZE, TransferProgress, human, validate_key
from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.interfaces import ProgressSink, null_progress

from mldock_azure.errors import STORAGE_ROLE, is_missing, translated
from mldock_azure.location import BlobLocation

if TYPE_CHECKING:  # pragma: no cover
    from mldock_azure.store import BlobArtifactStore

STATE_SUFFIX = ".mldock-fetch.json"


@dataclass(frozen=True)
class RemoteBlob:
    rel: str
    name: str
    size: int
    etag: str
    md5: bytes | None = None


def _remote(rel: str, props: Any) -> RemoteBlob:
    md5 = getattr(props.content_settings, "content_md5", None)
    return RemoteBlob(rel, props.name, int(props.size), str(props.etag),
                      bytes(md5) if md5 else None)


def _list(container: Any, loc: BlobLocation, uri: str) -> list[RemoteBlob]:
    """The blob at ``uri``, or the blobs under it as a folder."""
    if loc.prefix:
        try:
            props = container.get_blob_client(loc.prefix).get_blob_properties()
            return [_remote(loc.prefix.rsplit("/", 1)[-1], props)]
        except Exception as exc:
            if not is_missing(exc):
                raise
    start = f"{loc.prefix}/" if loc.prefix else ""
    found = []
    for props in container.list_blobs(name_starts_with=start):
        rel = props.name[len(start):]
        if not rel or rel.endswith("/") or (props.size == 0 and _is_folder_marker(props)):
            continue  # folder markers of hierarchical-namespace accounts and some tools
        try:
            validate_key(rel, what="blob path")
        except UsageError:
            raise MldockError(f"cannot fetch {uri}: blob {props.name!r} has a name that is not a"
                              " safe relative path", hint="rename the blob, or point [data] at a"
                              " cleaner folder") from None
        found.append(_remote(rel, props))
    if not found:
        container.get_container_properties()  # a missing container says so
        raise NotFoundError(f"nothing to fetch at {uri}: no such blob and no blobs under it",
                            hint="check the [data] URI, e.g. with 'az storage blob list'")
    names = {b.rel for b in found}
    for blob in found:
        parent = blob.rel.rpartition("/")[0]
        while parent:
            if parent in names:
                raise MldockError(f"cannot fetch {uri}: {parent!r} is both a blob and a folder",
                                  hint="rename one of them in the container")
            parent = parent.rpartition("/")[0]
    return found


def _is_folder_marker(props: Any) -> bool:
    metadata = getattr(props, "metadata", None) or {}
    return str(metadata.get("hdi_isfolder", "")).lower() == "true"


def _load_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text())
        return state if isinstance(state, dict) and state.get("format") == 1 else {}
    except (OSError, ValueError):
        return {}


def _current(dest: Path, blob: RemoteBlob, previous: dict[str, Any]) -> bool:
    known = previous.get(blob.rel)
    path = dest.joinpath(*blob.rel.split("/"))
    return (isinstance(known, dict) and known.get("etag") == blob.etag
            and known.get("size") == blob.size and path.is_file()
            and path.stat().st_size == blob.size)


def _download(container: Any, blob: RemoteBlob, dest: Path, meter: TransferProgress,
              concurrency: int, uri: str) -> None:
    """One blob into place through a temp file, pinned to its ETag, size and MD5 checked."""
    from azure.core import MatchConditions

    target = dest.joinpath(*blob.rel.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        with os.fdopen(fd, "wb") as handle:
            downloader = container.get_blob_client(blob.name).download_blob(
                etag=blob.etag, match_condition=MatchConditions.IfNotModified,
                max_concurrency=concurrency)
            for chunk in downloader.chunks():
                handle.write(chunk)
                md5.update(chunk)
                meter.add(len(chunk))
        size = os.path.getsize(temp)
        where = f"az://{container.container_name}/{blob.name}"
        if size != blob.size:
            raise MldockError(f"{where}: got {size} bytes, the listing says {blob.size}",
                              hint="fetch again; the blob may be changing")
        if blob.md5 is not None and md5.digest() != blob.md5:
            raise MldockError(f"{where} is corrupt: its MD5 does not match its Content-MD5",
                              hint="fetch again; nothing was written")
        os.replace(temp, target)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def _download_all(store: BlobArtifactStore, container: Any, blobs: list[RemoteBlob],
                  dest: Path, meter: TransferProgress, uri: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from mldock_azure.transfer import join_all

    concurrency = store.options.max_concurrency
    big = [b for b in blobs if b.size >= store.options.block_size]
    small = [b for b in blobs if b.size < store.options.block_size]
    for blob in big:  # each in parallel ranges
        _download(container, blob, dest, meter, concurrency, uri)
    if small:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(small)),
                                thread_name_prefix="mldock-azblob-fetch") as pool:
            join_all([pool.submit(_download, container, b, dest, meter, 1, uri) for b in small])


def fetch(store: BlobArtifactStore, uri: str, dest: Path, *,
          progress: ProgressSink = null_progress) -> Path:
    """Mirror the blob or folder ``uri`` into the folder ``dest``; return ``dest``."""
    loc = BlobLocation.parse(uri, account_in_uri=store.options.account_in_uri)
    if loc.account and loc.account != store.connection.account:
        raise UsageError(f"cannot fetch {uri}: it is in account {loc.account!r}, the store's is"
                         f" {store.connection.account!r}",
                         hint="give data in the store's storage account")
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"cannot fetch {uri} into {dest}: it is a file")
    state_path = dest.parent / f"{dest.name}{STATE_SUFFIX}"
    conn = store.connection
    container = conn.service.get_container_client(loc.container)
    with translated(f"fetch {uri}", resource=uri, role=STORAGE_ROLE, endpoint=conn.account_url):
        blobs = _list(container, loc, uri)
        previous = _load_state(state_path).get("objects", {})
        todo = [b for b in blobs if not _current(dest, b, previous)]
        total = sum(b.size for b in todo)
        progress(f"fetching {uri}: {len(blobs)} blob(s), {len(todo)} new or changed"
                 f" ({human(total)})")
        dest.mkdir(parents=True, exist_ok=True)
        meter = TransferProgress(progress, "downloading", uri, total)
        _download_all(store, container, sorted(todo, key=lambda b: -b.size), dest, meter, uri)
    listed = {b.rel for b in blobs}
    for rel in sorted(set(previous) - listed):  # gone from the container: gone from the mirror
        with contextlib.suppress(OSError):
            dest.joinpath(*rel.split("/")).unlink()
    state = {"format": 1, "uri": uri,
             "objects": {b.rel: {"etag": b.etag, "size": b.size} for b in blobs}}
    temp = state_path.with_name(f".{state_path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(state, sort_keys=True))
    os.replace(temp, state_path)
    store.count(bytes_received=total)
    progress(f"fetched {uri} into {dest} ({len(blobs)} blob(s), {human(total)} downloaded)")
    return dest


__all__ = ["CHUNK_SIZE", "RemoteBlob", "fetch"]
