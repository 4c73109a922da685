"""Content hashes of files and folders: the one definition every part of mldock shares.

(Public as ``mldock.cas.hashing``; ``mldock.local.hashing`` re-exports it for older
imports.)

The artifact store names blobs by these hashes, the builder hashes its inputs into an image tag, and
lineage records the hashes of input data. They must agree byte for byte, so the rules live here:

* a file's hash is the SHA-256 of its bytes, read in 1 MiB chunks (memory stays flat for big files);
* a tree's *manifest* maps each file's ``/``-separated path relative to the tree root to its
  ``sha256``, ``size`` and permission bits (``mode``); only files are listed (empty folders carry
  no content and are not recorded);
* a tree's hash is the SHA-256 of :func:`manifest_bytes` of its manifest: canonical JSON (sorted
  keys, no spaces), so equal content always gives an equal hash, whatever the file system's
  listing order.

Symbolic links are followed here (the content is what the link points at); a folder reached twice
through links is visited once, so a link cycle cannot loop forever. That suits folders the user
chose (data channels, build inputs). Folders another program wrote (model folders) are walked by
:func:`mldock.trees.walk_contained` instead, which refuses links that leave the folder, FIFOs and
device files. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

CHUNK_SIZE = 1 << 20
"""Bytes read at a time when hashing or copying (1 MiB)."""

Manifest = dict[str, dict[str, Any]]
"""relative path -> ``{"sha256": hex, "size": int, "mode": int}``."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex SHA-256 of a file's bytes, streamed in :data:`CHUNK_SIZE` chunks."""
    return sha256_and_size(path)[0]


def sha256_and_size(path: str | os.PathLike[str]) -> tuple[str, int]:
    """The hex SHA-256 of a file and the number of bytes hashed (one read, no race with stat)."""
    with open(path, "rb") as handle:
        return sha256_stream(handle)


def sha256_stream(handle: BinaryIO) -> tuple[str, int]:
    """The hex SHA-256 of what is left to read in ``handle``, and how many bytes that was."""
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: handle.read(CHUNK_SIZE), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def sha256_bytes(data: bytes) -> str:
    """The hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def copy_hashing(source: IO[bytes], target: IO[bytes],
                 on_chunk: Callable[[int], None] | None = None) -> tuple[str, int]:
    """Copy ``source`` to ``target`` in chunks, hashing what was copied; return (sha256, size).

    Hashing the bytes actually written (rather than the file beforehand) is what lets the artifact
    store name a blob by its true content even when the source file changes during the copy.
    """
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: source.read(CHUNK_SIZE), b""):
        digest.update(chunk)
        target.write(chunk)
        size += len(chunk)
        if on_chunk is not None:
            on_chunk(len(chunk))
    return digest.hexdigest(), size


def iter_tree_files(root: str | os.PathLike[str],
                    include: Callable[[str], bool] | None = None) -> Iterator[tuple[str, Path]]:
    """Yield ``(relpath, path)`` for every file under ``root``, sorted by relpath.

    ``relpath`` uses ``/`` on every platform. ``include(relpath)`` may filter files out (the builder
    passes its ``.dockerignore`` matcher). Links are followed; each real folder is walked once.
    """
    root = Path(root)
    found: list[tuple[str, Path]] = []
    seen_dirs: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        info = os.stat(dirpath)
        key = (info.st_dev, info.st_ino)
        if key in seen_dirs:  # a link cycle, or the same folder linked twice
            dirnames[:] = []
            continue
        seen_dirs.add(key)
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames:
            path = Path(dirpath, name)
            if not path.is_file():  # broken links, sockets, fifos: no content to store
                continue
            rel = name if rel_dir == "." else f"{rel_dir.replace(os.sep, '/')}/{name}"
            if include is None or include(rel):
                found.append((rel, path))
    found.sort(key=lambda item: item[0])
    return iter(found)


def file_mode(path: str | os.PathLike[str]) -> int:
    """The permission bits of a file (``0o644``, ``0o755``, …), links followed."""
    return stat.S_IMODE(os.stat(path).st_mode)


def manifest_bytes(manifest: Manifest) -> bytes:
    """Canonical JSON of a manifest: the bytes whose SHA-256 is the tree's hash."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def hash_tree(path: str | os.PathLike[str],
              include: Callable[[str], bool] | None = None) -> tuple[Manifest, str]:
    """Hash every file under ``path``; return ``(manifest, digest)``.

    ``digest`` is the SHA-256 of :func:`manifest_bytes` of ``manifest``, the same value the artifact
    store reports as a stored tree's ``sha256``, so "is this folder already stored?" is one compare.
    """
    path = Path(path)
    if not path.is_dir():
        raise NotADirectoryError(f"not a folder: {path}")
    manifest: Manifest = {}
    for rel, file in iter_tree_files(path, include):
        digest, size = sha256_and_size(file)
        manifest[rel] = {"sha256": digest, "size": size, "mode": file_mode(file)}
    return manifest, sha256_bytes(manifest_bytes(manifest))
