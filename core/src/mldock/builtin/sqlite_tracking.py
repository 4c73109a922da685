"""Built-in plugin ``sqlite-tracking``: runs, metrics and lineage in a local SQLite file (WAL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mldock.markers import hookimpl
from mldock.records import FactoryContext, TrackerRecord

if TYPE_CHECKING:  # the backend is imported by the factory, on first use
    from mldock.local.tracking import SqliteTracker


def _make(context: FactoryContext) -> SqliteTracker:
    from mldock.local.tracking import SqliteTracker

    return SqliteTracker.from_uri(context.uri or "sqlite:///.mldock/runs.db",
                                  base_dir=context.project_dir)


@hookimpl
def mldock_trackers() -> list[TrackerRecord]:
    return [TrackerRecord(
        name="sqlite", summary="Local SQLite file (WAL), safe with concurrent writers",
        schemes=("sqlite",), factory=_make,
        capabilities=frozenset({"live-metrics", "artifacts", "concurrent-writers"}))]
