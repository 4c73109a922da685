"""``mldock.cas``: the content-addressed store layout and the base class every store builds on.

*CAS* is the usual name for content-addressable storage (git's object store, Docker's registry
blobs): content is stored under its own hash, so the name says what the module owns. It is public
API for plugins: a cloud store (S3, Azure Blob, GCS, a third party's) subclasses
:class:`ContentAddressedStore`, implements a handful of blob and reference primitives, and inherits
key validation, the on-store format, deduplication, atomic publication, verified fetches, the
model-folder walk, error texts and progress lines. See :mod:`mldock.cas.store` for the
guarantees and :mod:`mldock.cas.layout` for what is stored.
"""

from __future__ import annotations

from mldock.cas.hashing import (
    CHUNK_SIZE,
    Manifest,
    copy_hashing,
    hash_tree,
    manifest_bytes,
    sha256_and_size,
    sha256_bytes,
    sha256_file,
    sha256_stream,
)
from mldock.cas.items import BlobDownload, BlobSource, staged_download, staged_folder
from mldock.cas.layout import (
    KEY_HINT,
    REF_NAME,
    BlobMissingError,
    blob_name,
    key_of_ref,
    parse_manifest,
    parse_ref,
    ref_body,
    ref_name,
    validate_key,
)
from mldock.cas.progress import TransferProgress, human
from mldock.cas.store import ContentAddressedStore, StoreStats

__all__ = [
    "CHUNK_SIZE",
    "KEY_HINT",
    "REF_NAME",
    "BlobDownload",
    "BlobMissingError",
    "BlobSource",
    "ContentAddressedStore",
    "Manifest",
    "StoreStats",
    "TransferProgress",
    "blob_name",
    "copy_hashing",
    "hash_tree",
    "human",
    "key_of_ref",
    "manifest_bytes",
    "parse_manifest",
    "parse_ref",
    "ref_body",
    "ref_name",
    "sha256_and_size",
    "sha256_bytes",
    "sha256_file",
    "sha256_stream",
    "staged_download",
    "staged_folder",
    "validate_key",
]
