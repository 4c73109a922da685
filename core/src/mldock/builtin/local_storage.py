"""Built-in plugin ``local-storage``: content-addressed artifacts on the local filesystem."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mldock.markers import hookimpl
from mldock.records import FactoryContext, StorageRecord

if TYPE_CHECKING:  # the backend is imported by the factory, on first use
    from mldock.local.storage import LocalArtifactStore


def _make(context: FactoryContext) -> LocalArtifactStore:
    from mldock.local.storage import LocalArtifactStore

    return LocalArtifactStore.from_uri(context.uri or ".mldock/artifacts",
                                       base_dir=context.project_dir)


@hookimpl
def mldock_storages() -> list[StorageRecord]:
    return [StorageRecord(
        name="local", summary="Local folder, content-addressed, atomic writes", schemes=("file",),
        factory=_make, capabilities=frozenset({"content-addressed", "atomic", "delete", "list"}))]
