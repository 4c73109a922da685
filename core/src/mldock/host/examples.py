"""Example config blocks that records carry, for ``mldock config example`` and ``mldock init``.

A plugin documents how a project selects and configures its backend in the record itself
(:attr:`~mldock.records.BackendRecord.example`), so the templates of ``mldock init`` need no block
written for each cloud: the installed deployers' examples become the new project's commented
environments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mldock.concerns import BACKEND_CONCERNS
from mldock.errors import MldockError, UnknownBackendError
from mldock.host.suggest import unknown_name_message

if TYPE_CHECKING:  # pragma: no cover
    from mldock.host.registry import Registered, Registry

__all__ = ["PROJECT_PLACEHOLDER", "commented", "environments_block", "example_text", "examples_for"]

PROJECT_PLACEHOLDER = "{project}"
"""Where an example names the project (a bucket prefix, an experiment)."""

NO_ENVIRONMENTS = ("# Cloud environments: install a deployer plugin (see 'mldock plugins list'),"
                   " then\n# 'mldock config example NAME' prints the block to paste here.\n")


def examples_for(registry: Registry, name: str) -> list[tuple[str, Registered]]:
    """(concern, registered record) of every backend named ``name``; an unknown name raises."""
    found = []
    known: set[str] = set()
    for concern in BACKEND_CONCERNS:
        records = registry.records(concern)
        known.update(records)
        if name in records:
            found.append((concern, records[name]))
    if not found:
        message, hint = unknown_name_message("backend", name, sorted(known))
        raise UnknownBackendError(message, hint=hint)
    return found


def example_text(registry: Registry, name: str, project: str = "<project>") -> str:
    """The example blocks of the backends named ``name``, each headed by what provides it."""
    parts = []
    for concern, reg in examples_for(registry, name):
        if reg.record.example.strip():
            head = f"# {concern} {name!r} from {reg.distribution}"
            parts.append(head + "\n" + reg.record.example.replace(PROJECT_PLACEHOLDER, project))
    if not parts:
        raise MldockError(f"{name!r} has no example config block",
                          hint=f"'mldock plugins list' names its package; its documentation lists"
                               f" the options of [<section>.{name}]")
    return "\n".join(part.rstrip("\n") + "\n" for part in parts)


def commented(text: str) -> str:
    """``text`` with every line commented out (``#`` alone for a blank line)."""
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    return "".join((f"# {line}" if line and not line.startswith("#") else line or "#") + "\n"
                   for line in lines)


def environments_block(registry: Registry, project: str) -> str:
    """The commented environments a new project's ``mldock.toml`` offers: one per installed
    deployer that carries an example (sorted by name), or a pointer when there is none."""
    blocks = [commented(reg.record.example.replace(PROJECT_PLACEHOLDER, project))
              for _, reg in sorted(registry.records("deployer").items())
              if reg.record.example.strip()]
    # "#" between blocks: the whole section stays commented, so uncommenting one environment's
    # lines never leaves a stray blank line that splits another's
    return "#\n".join(blocks) if blocks else NO_ENVIRONMENTS
