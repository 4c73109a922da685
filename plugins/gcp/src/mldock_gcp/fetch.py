"""Input data from plain Cloud Storage objects (``[data] train = "gs://bucket/datasets/iris"``).

Unlike artifacts, data sets are ordinary objects written by other tools, so there is no SHA-256 to
check against. What Cloud Storage does give is each object's size, generation and CRC32C in the
listing:

* ``gs://bucket/path/file.csv`` (an object) lands as ``dest/file.csv``; ``gs://bucket/path`` with
  no such object is a prefix, and every object under ``path/`` lands at its relative path.
* A re-fetch compares each object's generation and size with what was fetched last time (kept
  beside ``dest`` in ``<dest>.mldock-fetch.json``, never inside the data) and downloads only what
  changed; files whose object disappeared are removed, so ``dest`` mirrors the prefix.
* Each download goes to a temp file pinned to the listed generation (an object replaced mid-way
  fails instead of mixing versions); its size and CRC32C are checked before it is renamed into
  place (the library checks a whole download; a big object fetched in parallel ranges is checked
  here, over the assembled file).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mldock.cas import CHUNK_SIZE, TransferProgress, human, validate_key
from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.interfaces import ProgressSink, null_progress

from mldock_gcp.connection import TIMEOUT, GcsConnection
from mldock_gcp.errors import translated
from mldock_gcp.location import GcsLocation
from mldock_gcp.transfer import MeteredWriter, Mover, Stats

STATE_SUFFIX = ".mldock-fetch.json"


@dataclass(frozen=True)
class RemoteObject:
    rel: str
    name: str
    size: int
    generation: int
    crc32c: str | None
    gzipped: bool = False  # Content-Encoding: gzip (served decompressed: never in ranges)


def _remote(blob: Any, rel: str) -> RemoteObject:
    return RemoteObject(rel, blob.name, int(blob.size or 0), int(blob.generation or 0),
                        blob.crc32c, (blob.content_encoding or "").lower() == "gzip")


def _ranged(mover: Mover, obj: RemoteObject) -> bool:
    return mover.conn.parallel_download(obj.size) and not obj.gzipped


def _list(mover: Mover, loc: GcsLocation, uri: str) -> list[RemoteObject]:
    """The object at ``uri``, or the objects under it as a prefix."""
    conn = mover.conn
    if loc.prefix:
        blob = mover.bucket.get_blob(loc.prefix, timeout=TIMEOUT, retry=conn.retry)
        if blob is not None:
            return [_remote(blob, loc.prefix.rsplit("/", 1)[-1])]
    start = f"{loc.prefix}/" if loc.prefix else ""
    found = []
    for blob in conn.client.list_blobs(mover.bucket, prefix=start, timeout=TIMEOUT,
                                       retry=conn.retry):
        rel = blob.name[len(start):]
        if not rel or rel.endswith("/"):
            continue  # "folder" placeholders written by the console and some tools
        try:
            validate_key(rel, what="object path")
        except UsageError:
            raise MldockError(f"cannot fetch {uri}: object gs://{loc.bucket}/{blob.name} has a"
                              " name that is not a safe relative path",
                              hint="rename the object, or point [data] at a cleaner prefix"
                              ) from None
        found.append(_remote(blob, rel))
    if not found:
        mover.require_bucket(f"fetch {uri}")  # a missing bucket says so, not "no objects"
        raise NotFoundError(f"nothing to fetch at {uri}: no such object and no objects under it",
                            hint="check the [data] URI, e.g. with 'gcloud storage ls'")
    _refuse_clashes(found, uri)
    return found


def _refuse_clashes(found: list[RemoteObject], uri: str) -> None:
    names = {o.rel for o in found}
    for obj in found:
        parent = obj.rel.rsplit("/", 1)[0] if "/" in obj.rel else None
        while parent:
            if parent in names:
                raise MldockError(f"cannot fetch {uri}: {parent!r} is both an object and a folder",
                                  hint="rename one of them in the bucket")
            parent = parent.rsplit("/", 1)[0] if "/" in parent else None


def _load_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text())
        return state if isinstance(state, dict) and state.get("format") == 1 else {}
    except (OSError, ValueError):
        return {}


def _current(dest: Path, obj: RemoteObject, previous: dict[str, Any]) -> bool:
    known = previous.get(obj.rel)
    path = dest.joinpath(*obj.rel.split("/"))
    return (isinstance(known, dict) and known.get("generation") == obj.generation
            and known.get("size") == obj.size and path.is_file()
            and path.stat().st_size == obj.size)


def crc32c_of(path: str | Path) -> str:
    """A file's CRC32C in the base64 form Cloud Storage lists."""
    import google_crc32c

    checksum = google_crc32c.Checksum()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_SIZE), b""):
            checksum.update(chunk)
    return base64.b64encode(checksum.digest()).decode("ascii")


def _download_one(mover: Mover, obj: RemoteObject, temp: str, meter: TransferProgress) -> None:
    """Into ``temp``, pinned to the listed generation, then size and CRC32C checked."""
    if _ranged(mover, obj):
        mover.download_ranges(obj.name, (obj.size, obj.generation), temp, meter)
        if obj.crc32c and crc32c_of(temp) != obj.crc32c:
            raise MldockError(f"gs://{mover.location.bucket}/{obj.name} is corrupt: its CRC32C"
                              " does not match the listing", hint="fetch again; nothing was"
                              " written")
    else:
        blob = mover.bucket.blob(obj.name, generation=obj.generation)
        with open(temp, "wb") as handle:  # the library checks the CRC32C of a whole download
            blob.download_to_file(MeteredWriter(handle, meter), timeout=TIMEOUT,
                                  retry=mover.conn.retry)
    size = os.path.getsize(temp)
    if size != obj.size and not obj.gzipped:  # gzip: stored compressed, served inflated
        raise MldockError(f"gs://{mover.location.bucket}/{obj.name}: got {size} bytes, the"
                          f" listing says {obj.size}", hint="fetch again; the object may be"
                          " changing")


def _download_all(mover: Mover, objects: list[RemoteObject], dest: Path,
                  meter: TransferProgress) -> None:
    """Objects into place through temp files: small ones in parallel, big ones in ranges."""
    with contextlib.ExitStack() as stack:
        staged = []
        for obj in objects:
            target = dest.joinpath(*obj.rel.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                        dir=target.parent)
            os.close(fd)
            stack.callback(_unlink, temp)
            staged.append((obj, target, temp))
        small = [item for item in staged if not _ranged(mover, item[0])]
        mover.pool_map(lambda item: _download_one(mover, item[0], item[2], meter), small)
        for obj, _, temp in staged:
            if _ranged(mover, obj):
                _download_one(mover, obj, temp, meter)
        for _, target, temp in staged:
            os.chmod(temp, 0o644)
            os.replace(temp, target)


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def fetch(conn: GcsConnection, uri: str, dest: Path, *,
          progress: ProgressSink = null_progress, stats: Stats | None = None) -> Path:
    """Mirror the object or prefix ``uri`` into the folder ``dest``; return ``dest``.
    ``stats``: where to count the requests (the store's own counters)."""
    from google.api_core import exceptions as gax

    loc = GcsLocation.parse(uri)
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"cannot fetch {uri} into {dest}: it is a file")
    mover = Mover(conn, loc, stats if stats is not None else Stats())
    state_path = dest.parent / f"{dest.name}{STATE_SUFFIX}"
    with translated(f"fetch {uri}", resource=uri):
        try:
            objects = _list(mover, loc, uri)
            previous = _load_state(state_path).get("objects", {})
            todo = [obj for obj in objects if not _current(dest, obj, previous)]
            total = sum(obj.size for obj in todo)
            progress(f"fetching {uri}: {len(objects)} object(s), {len(todo)} new or changed"
                     f" ({human(total)})")
            dest.mkdir(parents=True, exist_ok=True)
            _download_all(mover, todo, dest, TransferProgress(progress, "downloading", uri,
                                                              total))
        except gax.NotFound:
            mover.require_bucket(f"fetch {uri}")
            raise
    listed = {obj.rel for obj in objects}
    for rel in sorted(set(previous) - listed):  # gone from the bucket: gone from the mirror
        with contextlib.suppress(OSError):
            dest.joinpath(*rel.split("/")).unlink()
    state = {"format": 1, "uri": uri, "objects": {
        obj.rel: {"generation": obj.generation, "size": obj.size} for obj in objects}}
    temp = state_path.with_name(f".{state_path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(state, sort_keys=True))
    os.replace(temp, state_path)
    progress(f"fetched {uri} into {dest} ({len(objects)} object(s), {human(total)} downloaded)")
    return dest
