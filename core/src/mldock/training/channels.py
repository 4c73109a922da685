"""Input data channels: from ``[data]`` to a folder per channel, with a content hash for lineage.

A channel is a local path (file or folder, relative to the project) or a storage URI. A file becomes
a folder holding just that file, so every platform sees the same shape (SageMaker mounts each
channel as ``/opt/ml/input/data/<channel>/``). URIs are fetched through the store serving their
scheme into a cache keyed by the URI and verified by content hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from mldock.cas.hashing import hash_tree, sha256_file
from mldock.errors import MldockError, UsageError
from mldock.local.diskspace import is_no_space, no_space_error
from mldock.session import Session


@dataclass(frozen=True)
class Channel:
    """A resolved input channel: its source, a local folder with its files, and their hash."""

    name: str
    source: str
    folder: Path
    sha256: str

    def lineage(self) -> dict[str, str]:
        return {"uri": self.source, "sha256": self.sha256}


def _is_uri(value: str) -> bool:
    return "://" in value and not value.startswith("file://")


def _local_path(session: Session, value: str) -> Path:
    if value.startswith("file://"):
        value = value[len("file://"):]
    return session.config.resolve_path(value).resolve()


def _stage_file(session: Session, path: Path, digest: str) -> Path:
    """A folder holding only ``path`` (hard-linked when possible), cached by content hash."""
    folder = session.state_dir / "cache" / "channels" / digest
    target = folder / path.name
    if target.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".{path.name}.tmp{os.getpid()}"
    try:
        try:
            os.link(path, temp)
        except OSError:
            shutil.copyfile(path, temp)
        os.replace(temp, target)
    except OSError as exc:  # a full disk, most likely: leave no temp copy behind
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if is_no_space(exc):
            raise no_space_error(session.state_dir) from exc
        raise
    return folder


def resolve_channel(session: Session, name: str, value: str) -> Channel:
    """Materialise one channel locally and hash it."""
    if _is_uri(value):
        store = session.storage_for(value)
        digest = hashlib.sha256(value.encode()).hexdigest()[:24]
        cache = session.state_dir / "cache" / "uris" / digest
        try:
            folder = store.fetch(value, cache)
        except NotImplementedError:
            raise UsageError(f"data channel {name!r}: {value} cannot be fetched by"
                             f" {type(store).__name__}",
                             hint="use a local path or a storage plugin that supports data URIs",
                             ) from None
        return Channel(name, value, folder, hash_tree(folder)[1])
    path = _local_path(session, value)
    if path.is_file():
        digest = sha256_file(path)
        return Channel(name, value, _stage_file(session, path, digest), digest)
    if path.is_dir():
        return Channel(name, value, path, hash_tree(path)[1])
    raise MldockError(f"data channel {name!r}: {path} does not exist",
                      hint="fix [data] in mldock.toml or create the file", exit_code=2)


def resolve_channels(session: Session) -> dict[str, Channel]:
    return {name: resolve_channel(session, name, value)
            for name, value in sorted(session.config.model.data.items())}
