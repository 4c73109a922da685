"""The inputs manifest of a build, and its hash, which names the image tag.

The manifest lists, one item each, everything the image is made from:

* ``mldock``: mldock's version; ``platform``: the target platform;
* ``dockerfile``: the SHA-256 of the Dockerfile text (rendered, or the user's);
* ``config:<field>``: for the rendered Dockerfile, the ``[project]``/``[build]`` values it was
  rendered from (base image, system packages, train and predictor references, …), so an
  explanation can name them rather than "the Dockerfile changed";
* ``arg:<NAME>``: a build argument (its value's hash: never stored in clear);
* ``file:<path>``, ``dir:<path>``, ``link:<path>``: every context entry the builder receives
  (permission bits and content hash; a link's target), the Dockerfile itself excepted.

Which entries count is decided by :mod:`mldock.imaging.context`: for the rendered Dockerfile only
what it copies, for a user's Dockerfile the whole context. Not hashed: modification times, owners,
excluded files, and the ``.dockerignore`` text itself (its *effect* is the list of entries). So
touching a file, editing ``.env``, data, a README or an environment's ``[storage]`` never causes a
rebuild. Equal manifest ⇒ equal hash ⇒ equal tag ⇒ the build is skipped.

The base image counts by its reference: a tag moved by a later pull is not noticed (pin
``base_image`` by digest, ``python:3.11-slim@sha256:…``, to make it count).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mldock.cas.hashing import sha256_file
from mldock.imaging.context import ContextEntry

HASH_SCHEME = "mldock-inputs/2"
TAG_LENGTH = 12
LINE_HASH_LENGTH = 16


@dataclass(frozen=True)
class InputManifest:
    """Everything one build reads.

    Attributes:
        items: item name (see the module docstring) → fingerprint.
        lines: for the requirements file(s), the hash of each non-empty line, in order; only used
            to explain a change line by line (the file's own item already counts it).
    """

    items: Mapping[str, str]
    lines: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def digest(self) -> str:
        """The hex SHA-256 of the items: the image tag is its first :data:`TAG_LENGTH` digits."""
        digest = hashlib.sha256()
        digest.update((HASH_SCHEME + "\n").encode())
        for key in sorted(self.items):
            digest.update(f"{key}\0{self.items[key]}\n".encode("utf-8", "surrogateescape"))
        return digest.hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {"scheme": HASH_SCHEME, "items": dict(sorted(self.items.items())),
                "lines": {path: list(hashes) for path, hashes in sorted(self.lines.items())}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InputManifest:
        """Read :meth:`to_json`'s output; raises ``TypeError`` for anything else."""
        items, lines = data.get("items"), data.get("lines", {})
        if not isinstance(items, dict) or not isinstance(lines, dict):
            raise TypeError("not an mldock inputs manifest")
        return cls(items={str(k): str(v) for k, v in items.items()},
                   lines={str(k): tuple(str(h) for h in v) for k, v in lines.items()})


def manifest_for(*, dockerfile: str, entries: Iterable[ContextEntry],
                 build_args: Mapping[str, str] | None = None, platform: str | None = None,
                 version: str = "", config_items: Mapping[str, str] | None = None,
                 line_files: Iterable[str] = ()) -> InputManifest:
    """The manifest of a build (see the module docstring for the items)."""
    items: dict[str, str] = {
        "mldock": version, "platform": platform or "",
        "dockerfile": hashlib.sha256(dockerfile.encode("utf-8")).hexdigest()}
    items.update({f"config:{key}": value for key, value in (config_items or {}).items()})
    for key, value in (build_args or {}).items():
        items[f"arg:{key}"] = hashlib.sha256(value.encode("utf-8")).hexdigest()
    wanted = set(line_files)
    lines: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        if entry.kind == "file":
            content = (hashlib.sha256(entry.data).hexdigest() if entry.data is not None
                       else sha256_file(entry.source))  # type: ignore[arg-type]
            items[f"file:{entry.path}"] = f"{entry.mode:o} {content}"
            if entry.path in wanted:
                lines[entry.path] = line_hashes(_read(entry))
        elif entry.kind == "dir":
            items[f"dir:{entry.path}"] = f"{entry.mode:o}"
        else:
            items[f"link:{entry.path}"] = entry.target
    return InputManifest(items=items, lines=lines)


def line_hashes(data: bytes) -> tuple[str, ...]:
    """A short hash of each non-empty line (stripped), in order: enough to say which line was
    added or removed without storing the text (a requirement line may carry a token)."""
    text = data.decode("utf-8", "replace")
    return tuple(line_hash(line) for line in text.splitlines() if line.strip())


def line_hash(line: str) -> str:
    return hashlib.sha256(line.strip().encode("utf-8")).hexdigest()[:LINE_HASH_LENGTH]


def tag_for(repository: str, digest_hex: str) -> str:
    """``repository:<first 12 hex digits>``."""
    return f"{repository}:{digest_hex[:TAG_LENGTH]}"


def _read(entry: ContextEntry) -> bytes:
    if entry.data is not None:
        return entry.data
    if entry.source is None:
        raise ValueError(f"context entry {entry.path!r} has neither data nor a source file")
    return entry.source.read_bytes()
