"""References and manifests: the two small JSON documents that make blobs into artifacts.

Both use the local store's formats byte for byte (``mldock.local.storage`` and
``mldock.local.hashing``), so the two stores agree on every hash and a local store's folder copied to
a bucket reads back as the same artifacts:

* a **reference** ``<prefix>/refs/<key>/.mldock-ref`` is ``{"format": 1, "key", "sha256", "size",
  "kind", "stored_at"}``; it is the only thing that makes a key visible, and it is written last;
* a **manifest** is a blob holding :func:`~mldock.local.hashing.manifest_bytes` of
  ``{relpath: {"sha256", "size", "mode"}}``; a tree's ``sha256`` is the manifest's hash.
"""

from __future__ import annotations

import json
import time
from typing import Any

from mldock.errors import MldockError, UsageError
from mldock.local.hashing import Manifest
from mldock.local.storage import REF_NAME, validate_key

FORMAT = 1


def ref_body(key: str, digest: str, size: int, kind: str) -> bytes:
    """The reference document, as the local store writes it."""
    body = {"format": FORMAT, "key": key, "sha256": digest, "size": size, "kind": kind,
            "stored_at": time.time()}
    return json.dumps(body, sort_keys=True).encode()


def parse_ref(data: bytes, key: str, where: str) -> dict[str, Any]:
    """A reference's fields, checked; a damaged one is an error naming the key."""
    try:
        body = json.loads(data)
        ok = (body["kind"] in ("file", "tree") and isinstance(body["sha256"], str)
              and len(body["sha256"]) == 64 and isinstance(body["size"], int))
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise MldockError(f"artifact {key!r}: its reference {where} is damaged",
                          hint="store the artifact again")
    return body


def parse_manifest(data: bytes, key: str) -> Manifest:
    """A tree's manifest, every path checked to be a safe relative path (no ``..``)."""
    try:
        manifest = json.loads(data)
        if not isinstance(manifest, dict):
            raise TypeError("not an object")
        for rel, entry in manifest.items():
            validate_key(rel, what="manifest path")
            if (not isinstance(entry["sha256"], str) or len(entry["sha256"]) != 64
                    or not isinstance(entry["size"], int)):
                raise ValueError(rel)
    except (ValueError, KeyError, TypeError, AttributeError, UsageError):
        raise MldockError(f"artifact {key!r}: its manifest is malformed or lists an unsafe path",
                          hint="store the artifact again") from None
    return manifest


def ref_suffix() -> str:
    """What every reference object's key ends with."""
    return "/" + REF_NAME
