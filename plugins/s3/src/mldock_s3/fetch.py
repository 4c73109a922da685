"""Input data from plain S3 objects (``[data] train = "s3://bucket/datasets/iris"``).

Unlike artifacts, data sets are ordinary objects written by other tools, so there is no SHA-256
to check against. What S3 does give is each object's size and ETag in the listing:

* ``s3://bucket/path/file.csv`` (an object) lands as ``dest/file.csv``; ``s3://bucket/path`` with
  no such object is a prefix, and every object under ``path/`` lands at its relative path.
* A re-fetch compares each object's ETag and size with what was fetched last time (kept beside
  ``dest`` in ``<dest>.mldock-fetch.json``, never inside the data) and downloads only what changed;
  files whose object disappeared are removed, so ``dest`` mirrors the prefix.
* Each download goes to a temp file pinned to the listed ETag (``If-Match``: an object replaced
  mid-way fails instead of mixing versions), its size is checked and, where the ETag is a plain
  MD5 (single-part, no KMS), its MD5 too, before it is renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from mldock.cas import CHUNK_SIZE, validate_key
from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.interfaces import ProgressSink, null_progress

from mldock_s3.client import S3Connection
from mldock_s3.errors import is_missing, translated
from mldock_s3.location import S3Location
from mldock_s3.progress import TransferProgress, human, subscriber

PLAIN_MD5 = re.compile(r'^"?[0-9a-f]{32}"?$')
STATE_SUFFIX = ".mldock-fetch.json"


@dataclass(frozen=True)
class RemoteObject:
    rel: str
    key: str
    size: int
    etag: str


def _list(conn: S3Connection, loc: S3Location, uri: str) -> list[RemoteObject]:
    """The object at ``uri``, or the objects under it as a prefix."""
    client, bucket = conn.client, loc.bucket
    if loc.prefix:
        try:
            head = client.head_object(Bucket=bucket, Key=loc.prefix)
            name = loc.prefix.rsplit("/", 1)[-1]
            return [RemoteObject(name, loc.prefix, int(head["ContentLength"]), head["ETag"])]
        except ClientError as exc:
            if not is_missing(exc):
                raise
    start = f"{loc.prefix}/" if loc.prefix else ""
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(start):]
            if not rel or rel.endswith("/"):
                continue  # "folder" markers written by consoles and some tools
            try:
                validate_key(rel, what="object path")
            except UsageError:
                raise MldockError(f"cannot fetch {uri}: object s3://{bucket}/{obj['Key']} has a"
                                  " name that is not a safe relative path",
                                  hint="rename the object, or point [data] at a cleaner prefix"
                                  ) from None
            found.append(RemoteObject(rel, obj["Key"], int(obj["Size"]), obj["ETag"]))
    if not found:
        client.head_bucket(Bucket=bucket)  # a missing bucket says so, rather than "no objects"
        raise NotFoundError(f"nothing to fetch at {uri}: no such object and no objects under it",
                            hint="check the [data] URI, e.g. with 'aws s3 ls'")
    names = {o.rel for o in found}
    for obj in found:
        parent = obj.rel.rsplit("/", 1)[0] if "/" in obj.rel else None
        while parent:
            if parent in names:
                raise MldockError(f"cannot fetch {uri}: {parent!r} is both an object and a folder",
                                  hint="rename one of them in the bucket")
            parent = parent.rsplit("/", 1)[0] if "/" in parent else None
    return found


def _load_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text())
        return state if isinstance(state, dict) and state.get("format") == 1 else {}
    except (OSError, ValueError):
        return {}


def _current(dest: Path, obj: RemoteObject, previous: dict[str, Any]) -> bool:
    known = previous.get(obj.rel)
    path = dest.joinpath(*obj.rel.split("/"))
    return (isinstance(known, dict) and known.get("etag") == obj.etag
            and known.get("size") == obj.size and path.is_file()
            and path.stat().st_size == obj.size)


def _download_all(conn: S3Connection, bucket: str, objects: list[RemoteObject], dest: Path,
                  meter: TransferProgress, config: Any) -> None:
    """Objects into place through temp files, in parallel, pinned to their ETags and verified."""
    from boto3.s3.transfer import create_transfer_manager
    from s3transfer.subscribers import BaseSubscriber

    class _Known(BaseSubscriber):  # size and ETag from the listing: no HEAD per object
        def __init__(self, obj: RemoteObject):
            self.obj = obj

        def on_queued(self, future: Any, **kwargs: Any) -> None:
            future.meta.provide_transfer_size(self.obj.size)
            future.meta.provide_object_etag(self.obj.etag)

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
        # entered last, so it exits first: transfers are joined before temp files are removed
        manager = stack.enter_context(create_transfer_manager(conn.client, config))
        pending = [(obj, target, temp,
                    manager.download(bucket, obj.key, temp,
                                     subscribers=[_Known(obj), subscriber(meter)]))
                   for obj, target, temp in staged]
        for obj, target, temp, future in pending:
            future.result()
            _verify(conn, bucket, obj, temp, config.multipart_threshold)
            os.chmod(temp, 0o644)
            os.replace(temp, target)


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _verify(conn: S3Connection, bucket: str, obj: RemoteObject, temp: str, threshold: int) -> None:
    """Size always; MD5 where the ETag is one (single-part upload, no KMS or customer key)."""
    size = os.path.getsize(temp)
    if size != obj.size:
        raise MldockError(f"s3://{bucket}/{obj.key}: got {size} bytes, the listing says"
                          f" {obj.size}", hint="fetch again; the object may be changing")
    if PLAIN_MD5.match(obj.etag) and obj.size < threshold:
        md5 = hashlib.md5(usedforsecurity=False)
        with open(temp, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK_SIZE), b""):
                md5.update(chunk)
        if md5.hexdigest() != obj.etag.strip('"') and not _encrypted(conn, bucket, obj):
            raise MldockError(f"s3://{bucket}/{obj.key} is corrupt: its MD5 does not match its"
                              " ETag", hint="fetch again; nothing was written")


def _encrypted(conn: S3Connection, bucket: str, obj: RemoteObject) -> bool:
    """KMS- and customer-key-encrypted objects have ETags that are not their MD5."""
    head = conn.client.head_object(Bucket=bucket, Key=obj.key)
    return head.get("ServerSideEncryption") == "aws:kms" or "SSECustomerAlgorithm" in head


def fetch(conn: S3Connection, uri: str, dest: Path, *,
          progress: ProgressSink = null_progress) -> Path:
    """Mirror the object or prefix ``uri`` into the folder ``dest``; return ``dest``."""
    loc = S3Location.parse(uri)
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"cannot fetch {uri} into {dest}: it is a file")
    state_path = dest.parent / f"{dest.name}{STATE_SUFFIX}"
    with translated(f"fetch {uri}", bucket=loc.bucket, key=loc.prefix or None,
                    endpoint=conn.endpoint):
        objects = _list(conn, loc, uri)
        previous = _load_state(state_path).get("objects", {})
        todo = [obj for obj in objects if not _current(dest, obj, previous)]
        total = sum(obj.size for obj in todo)
        progress(f"fetching {uri}: {len(objects)} object(s), {len(todo)} new or changed"
                 f" ({human(total)})")
        dest.mkdir(parents=True, exist_ok=True)
        meter = TransferProgress(progress, "downloading", uri, total)
        if todo:
            ranged = conn.transfer_config(conn.range_size(max(o.size for o in todo)))
            _download_all(conn, loc.bucket, sorted(todo, key=lambda o: -o.size), dest, meter,
                          ranged)
    listed = {obj.rel for obj in objects}
    for rel in sorted(set(previous) - listed):  # gone from the bucket: gone from the mirror
        with contextlib.suppress(OSError):
            dest.joinpath(*rel.split("/")).unlink()
    state = {"format": 1, "uri": uri,
             "objects": {obj.rel: {"etag": obj.etag, "size": obj.size} for obj in objects}}
    temp = state_path.with_name(f".{state_path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(state, sort_keys=True))
    os.replace(temp, state_path)
    progress(f"fetched {uri} into {dest} ({len(objects)} object(s), {human(total)} downloaded)")
    return dest
