"""The table of concerns: what a plugin can contribute, and where each thing is wired.

One row per concern names its registration hook, the record type the hook returns, the section of
``mldock.toml`` whose sub-tables hold a backend's options, and the interface its backends
implement. The registry (which hooks to call, which record types to accept), the config loader
(which sections hold backend tables) and :class:`~mldock.session.Session` (which interface a built
backend has) all read this table, so a new concern is one row here and nothing else to keep in
step.

This module imports only :mod:`mldock.records` (stdlib and dataclasses): the interfaces are named
as ``"module:Class"`` strings and imported on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mldock.records import (
    BuilderRecord,
    CommandRecord,
    DeployerRecord,
    StorageRecord,
    TemplateRecord,
    TrackerRecord,
    resolve_object,
)

__all__ = ["BACKEND_CONCERNS", "CONCERNS", "SECTION_CONCERN", "Concern", "Selection", "selection"]


@dataclass(frozen=True)
class Concern:
    """One kind of contribution.

    Attributes:
        name: the concern's name (``builder``, ``storage``, …), as used in lookups and messages.
        hook: the registration hook returning this concern's records.
        record_type: the record class the hook must return.
        section: the ``mldock.toml`` section whose ``[<section>.<backend>]`` tables hold options;
            ``None`` for concerns without backends (commands, templates).
        interface: ``"module:Class"`` of the interface its backends implement, or ``None``.
        name_key: the key of ``section`` that names the selected backend (``[build] builder``);
            when it is unset (or ``None``), ``uri`` selects by scheme.
        by_scheme: whether a backend can be selected by the scheme of ``[<section>] uri``.
    """

    name: str
    hook: str
    record_type: type
    section: str | None = None
    interface: str | None = None
    name_key: str | None = None
    by_scheme: bool = False

    def load_interface(self) -> type | None:
        """The interface class (imports :mod:`mldock.interfaces` on first use)."""
        return resolve_object(self.interface) if self.interface else None


CONCERNS: dict[str, Concern] = {c.name: c for c in (
    Concern("builder", "mldock_builders", BuilderRecord, "build", "mldock.interfaces:Builder",
            name_key="builder"),
    Concern("storage", "mldock_storages", StorageRecord, "storage",
            "mldock.interfaces:ArtifactStore", by_scheme=True),
    Concern("tracker", "mldock_trackers", TrackerRecord, "tracking",
            "mldock.interfaces:Tracker", name_key="backend", by_scheme=True),
    Concern("deployer", "mldock_deployers", DeployerRecord, "deploy",
            "mldock.interfaces:Deployer", name_key="deployer"),
    Concern("command", "mldock_commands", CommandRecord),
    Concern("template", "mldock_templates", TemplateRecord),
)}
"""Concern name -> its row, in registration order."""

BACKEND_CONCERNS: tuple[str, ...] = tuple(n for n, c in CONCERNS.items() if c.section)
"""The concerns whose records build backends (builder, storage, tracker, deployer)."""

SECTION_CONCERN: dict[str, str] = {c.section: n for n, c in CONCERNS.items() if c.section}
"""Config section -> the concern whose backends own its sub-tables."""


@dataclass(frozen=True)
class Selection:
    """Which backend of a concern a config selects, and the key that says so.

    Attributes:
        concern: the concern's name.
        key: the config key path that selects it, e.g. ``("tracking", "backend")``.
        name: the backend's name when a key names it, else ``None``.
        uri: the URI whose scheme selects it when no key names one, else ``None``.
    """

    concern: str
    key: tuple[str, str]
    name: str | None = None
    uri: str | None = None


def selection(concern: str, config_model: Any) -> Selection:
    """What ``config_model`` (a validated :class:`~mldock.config.model.MldockConfig`) selects."""
    row = CONCERNS[concern]
    if row.section is None:
        raise ValueError(f"{concern!r} is not a backend concern")
    section = getattr(config_model, row.section)
    name = getattr(section, row.name_key) if row.name_key else None
    if name or not row.by_scheme:
        return Selection(concern, (row.section, str(row.name_key)), name=name)
    return Selection(concern, (row.section, "uri"), uri=section.uri)
