"""Built-in plugin ``local-storage``: content-addressed artifacts on the local filesystem."""

from __future__ import annotations

from mldock.markers import hookimpl
from mldock.records import FactoryContext, StorageRecord


def _make(context: FactoryContext):
    from mldock.local.storage import LocalArtifactStore

    return LocalArtifactStore.from_uri(context.uri or ".mldock/artifacts",
                                       base_dir=context.project_dir)


@hookimpl
def mldock_storages():
    return [StorageRecord(
        name="local", summary="Local folder, content-addressed, atomic writes", schemes=("file",),
        factory=_make, capabilities=frozenset({"content-addressed", "atomic", "delete", "list"}))]
