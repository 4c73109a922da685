"""What a Dockerfile reads from its build context: the sources of its ``COPY`` and ``ADD`` steps.

For the Dockerfile mldock renders, these sources are the *only* context paths that can reach the
image, so they decide both what is sent to the builder and what the image tag hashes. Deriving them
from the rendered text (instead of keeping a second list of "files the image needs") means a new
``COPY`` line in :func:`~mldock.imaging.dockerfile.render_dockerfile` is picked up with no other
change, and the two can never disagree.

Parsing follows the Dockerfile reference closely enough for the rendered file and ordinary user
files: ``\\`` line continuations, ``#`` comment lines, flags (``--chown``, ``--chmod``, ``--link``)
skipped, the JSON array form, and the last argument taken as the destination. ``COPY --from=…``
reads another stage or image, and ``ADD`` of a URL reads the network: neither reads the context.
Standard library only.
"""

from __future__ import annotations

import fnmatch
import json
import re

WHOLE_CONTEXT = ""
"""The source ``.``: the whole context."""

_INSTRUCTION = re.compile(r"^\s*(COPY|ADD)\s+(.*)$", re.IGNORECASE | re.DOTALL)
_GLOB = re.compile(r"[*?\[]")


def logical_lines(dockerfile: str) -> list[str]:
    """The Dockerfile's instructions, one per item: continuations joined, comments dropped."""
    lines: list[str] = []
    current = ""
    for raw in dockerfile.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment line inside a continued instruction is ignored, as docker does
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        lines.append(current + raw)
        current = ""
    if current.strip():
        lines.append(current)
    return lines


def copy_sources(dockerfile: str) -> tuple[str, ...]:
    """The normalised context paths the Dockerfile's ``COPY``/``ADD`` steps read, sorted.

    Paths are relative to the context root, POSIX, without ``./`` or a trailing ``/``; the whole
    context (``COPY . …``) is :data:`WHOLE_CONTEXT`. Sources may keep Docker's wildcards.
    """
    sources: set[str] = set()
    for line in logical_lines(dockerfile):
        match = _INSTRUCTION.match(line)
        if not match:
            continue
        arguments = _arguments(match.group(2))
        if any(arg.lower().startswith("--from") for arg in arguments):
            continue
        paths = [arg for arg in arguments if not arg.startswith("--")]
        for source in paths[:-1]:
            if "://" in source:
                continue  # ADD <url>: fetched by the builder, not read from the context
            sources.add(normalise(source))
    return tuple(sorted(sources))


def normalise(source: str) -> str:
    """``./src/`` → ``src``; ``.`` or ``/`` → :data:`WHOLE_CONTEXT`."""
    parts = [part for part in source.replace("\\", "/").split("/") if part not in ("", ".")]
    return "/".join(parts)


def is_read(path: str, sources: tuple[str, ...]) -> bool:
    """Whether the context path ``path`` is one of ``sources`` or lies under one of them."""
    for source in sources:
        if source == WHOLE_CONTEXT or path == source or path.startswith(source + "/"):
            return True
        if _GLOB.search(source):
            depth = source.count("/") + 1
            head = "/".join(path.split("/")[:depth])
            if path.count("/") + 1 >= depth and fnmatch.fnmatchcase(head, source):
                return True
    return False


def _arguments(text: str) -> list[str]:
    text = text.strip()
    flags: list[str] = []
    while text.startswith("--"):  # flags come before the JSON form, too
        flag, _, text = text.partition(" ")
        flags.append(flag)
        text = text.strip()
    if text.startswith("["):
        try:
            values = json.loads(text)
        except ValueError:
            values = None
        if isinstance(values, list) and all(isinstance(value, str) for value in values):
            return [*flags, *values]
    return [*flags, *text.split()]
