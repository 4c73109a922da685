"""The input hash: one SHA-256 over everything a build reads, which names the image tag.

Hashed: the Dockerfile text, every context entry's relative path, kind, permission bits and content
hash (the project files that survive the ignore patterns, plus the runtime, shims, CA bundle and
``.dockerignore`` that mldock adds), the build arguments, the platform and mldock's version.
Not hashed: modification times, owners, and excluded files, so touching a file or editing ``.env``
or data never causes a rebuild. Equal hash ⇒ equal tag ⇒ the build is skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from mldock.imaging.context import context_entries
from mldock.local.hashing import sha256_file

HASH_SCHEME = "mldock-inputs/1"
TAG_LENGTH = 12


def input_hash(*, dockerfile: str, context_dir: Path, patterns: list[str],
               extra_files: Mapping[str, bytes], build_args: Mapping[str, str] | None = None,
               platform: str | None = None, version: str = "") -> str:
    """The hex SHA-256 of the build inputs (see the module docstring for what counts)."""
    digest = hashlib.sha256()

    def add(*fields: str) -> None:
        digest.update(("\0".join(fields) + "\n").encode("utf-8", "surrogateescape"))

    add(HASH_SCHEME, version)
    add("dockerfile", hashlib.sha256(dockerfile.encode("utf-8")).hexdigest())
    for entry in context_entries(context_dir, patterns, extra_files):
        if entry.kind == "file":
            content = (hashlib.sha256(entry.data).hexdigest() if entry.data is not None
                       else sha256_file(entry.source))  # type: ignore[arg-type]
            add("F", entry.path, f"{entry.mode:o}", content)
        elif entry.kind == "dir":
            add("D", entry.path, f"{entry.mode:o}")
        else:
            add("L", entry.path, entry.target)
    for key in sorted(build_args or {}):
        add("A", key, (build_args or {})[key])
    add("P", platform or "")
    return digest.hexdigest()


def tag_for(repository: str, digest_hex: str) -> str:
    """``repository:<first 12 hex digits>``."""
    return f"{repository}:{digest_hex[:TAG_LENGTH]}"
