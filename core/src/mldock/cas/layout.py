"""The content-addressed layout: object names, the two JSON documents, and their error texts.

Every store built on :class:`mldock.cas.ContentAddressedStore` keeps this layout under its root
(a folder, a bucket prefix, a container)::

    blobs/sha256/ab/cdef…       file contents and tree manifests, named by their SHA-256
    refs/<key>/.mldock-ref      the reference: which blob a key points at, written last

* a **reference** is ``json.dumps({"format": 1, "key", "sha256", "size", "kind", "stored_at"},
  sort_keys=True)``; it is the only thing that makes a key visible;
* a **manifest** is a blob holding :func:`~mldock.cas.hashing.manifest_bytes` of
  ``{relpath: {"sha256", "size", "mode"}}``; a tree's ``sha256`` is the manifest's hash.

The bytes are those the local store has always written, so a local store's folder copied to a
bucket reads back as the same artifacts, and stores written by older versions stay readable.
Standard library only.
"""

from __future__ import annotations

import json
import time
from typing import Any

from mldock.cas.hashing import Manifest
from mldock.errors import MldockError, NotFoundError, UsageError

FORMAT = 1
"""The reference document's ``format``; readers accept any document with the fields they need."""
REF_NAME = ".mldock-ref"
"""File name of a key's reference inside ``refs/<key>/``; key parts may not start with it."""
KINDS = ("file", "tree")
KEY_HINT = "use a relative '/'-separated path such as 'models/iris', without '..' or empty parts"
AGAIN_HINT = "store the artifact again"


def validate_key(key: str, *, what: str = "artifact key") -> str:
    """Return ``key`` if it is a safe relative ``/``-separated path, else raise UsageError."""
    if not isinstance(key, str) or not key:
        raise UsageError(f"invalid {what} {key!r}: it is empty", hint=KEY_HINT)
    parts = key.split("/")
    problems = [
        (key.startswith("/"), "it must be relative (no leading '/')"),
        ("\\" in key, "use '/' to separate parts, not '\\'"),
        (any(ord(c) < 32 for c in key), "it contains a control character"),
        (any(p in ("", ".", "..") for p in parts), "it has an empty, '.' or '..' part"),
        (any(p.startswith(REF_NAME) for p in parts), f"parts starting {REF_NAME!r} are reserved"),
    ]
    for bad, reason in problems:
        if bad:
            raise UsageError(f"invalid {what} {key!r}: {reason}", hint=KEY_HINT)
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a key that may end with ``/``."""
    if prefix:
        validate_key(prefix.rstrip("/") or ".", what="prefix")
    return prefix


def blob_name(digest: str) -> str:
    """The blob's name under the store's root: ``blobs/sha256/ab/cdef…``."""
    return f"blobs/sha256/{digest[:2]}/{digest[2:]}"


def ref_name(key: str) -> str:
    """The reference's name under the store's root: ``refs/<key>/.mldock-ref``."""
    return f"refs/{key}/{REF_NAME}"


def key_of_ref(name: str) -> str | None:
    """The key whose reference is ``name`` (relative to ``refs/``), or None if it is not one."""
    suffix = "/" + REF_NAME
    return name[:-len(suffix)] if name.endswith(suffix) and len(name) > len(suffix) else None


def ref_body(key: str, digest: str, size: int, kind: str) -> bytes:
    """The reference document's bytes."""
    body = {"format": FORMAT, "key": key, "sha256": digest, "size": size, "kind": kind,
            "stored_at": time.time()}
    return json.dumps(body, sort_keys=True).encode()


def _is_digest(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64


def parse_ref(data: bytes, key: str, where: str) -> dict[str, Any]:
    """A reference's fields, checked; a damaged one is an error naming the key and ``where``."""
    try:
        body = json.loads(data)
        ok = (body["kind"] in KINDS and _is_digest(body["sha256"])
              and isinstance(body["size"], int))
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise MldockError(f"artifact {key!r}: its reference {where} is damaged", hint=AGAIN_HINT)
    return dict(body)


def parse_manifest(data: bytes, key: str) -> Manifest:
    """A tree's manifest, every path checked to be a safe relative path (no ``..``)."""
    try:
        manifest = json.loads(data)
        if not isinstance(manifest, dict):
            raise TypeError("not an object")
        for rel, entry in manifest.items():
            validate_key(rel, what="manifest path")
            if not _is_digest(entry["sha256"]) or not isinstance(entry["size"], int):
                raise ValueError(rel)
    except (ValueError, KeyError, TypeError, AttributeError, UsageError):
        raise MldockError(f"artifact {key!r}: its manifest is malformed or lists an unsafe path",
                          hint=AGAIN_HINT) from None
    return manifest


# --- error texts every store shares ------------------------------------------------------------
def not_found(key: str, uri: str) -> NotFoundError:
    return NotFoundError(f"no artifact {key!r} in {uri}",
                         hint="check the key; stored keys are listed by the store")


def missing_blob(key: str, digest: str, uri: str) -> MldockError:
    return MldockError(f"artifact {key!r}: its content {digest[:12]}… is missing from {uri}",
                       hint="the store was changed outside mldock; store the artifact again")


def corrupt(key: str, expected: str, got: str, part: str = "") -> MldockError:
    where = f" (file {part!r})" if part else ""
    return MldockError(
        f"artifact {key!r}{where} is corrupt: content hash {got[:12]}… does not match the"
        f" recorded {expected[:12]}…", hint="store the artifact again; nothing was written")


def wrong_kind(key: str, kind: str) -> UsageError:
    if kind == "tree":
        return UsageError(f"artifact {key!r} is a tree (a folder): fetch it with get_tree")
    return UsageError(f"artifact {key!r} is a single file: fetch it with get_file")


def changed(what: str) -> MldockError:
    return MldockError(f"{what} changed while it was being stored; nothing was published",
                       hint="store it again once nothing writes to it")


class BlobMissingError(MldockError):
    """Raised by a backend's ``get_blob`` when the blob is absent; the base names the artifact."""

    def __init__(self, digest: str):
        super().__init__(f"blob {digest[:12]}… is missing", hint=AGAIN_HINT)
        self.digest = digest
