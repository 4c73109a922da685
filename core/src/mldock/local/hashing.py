"""Kept for imports written before :mod:`mldock.cas.hashing` became public: the same functions.

New code (and every plugin) imports :mod:`mldock.cas.hashing`.
"""

from __future__ import annotations

from mldock.cas.hashing import (
    CHUNK_SIZE,
    Manifest,
    copy_hashing,
    file_mode,
    hash_tree,
    iter_tree_files,
    manifest_bytes,
    sha256_and_size,
    sha256_bytes,
    sha256_file,
    sha256_stream,
)

__all__ = ["CHUNK_SIZE", "Manifest", "copy_hashing", "file_mode", "hash_tree", "iter_tree_files",
           "manifest_bytes", "sha256_and_size", "sha256_bytes", "sha256_file", "sha256_stream"]
