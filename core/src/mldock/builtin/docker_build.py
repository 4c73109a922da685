"""Built-in plugin ``docker-build``: builds the project image with the Docker engine."""

from __future__ import annotations

from mldock.interfaces import Builder
from mldock.markers import hookimpl
from mldock.records import BuilderRecord, FactoryContext


def _make(context: FactoryContext) -> Builder:
    from mldock.local.build import DockerBuilder

    return DockerBuilder()


@hookimpl
def mldock_builders() -> list[BuilderRecord]:
    return [BuilderRecord(
        name="docker",
        summary="Docker engine build (docker SDK), skipped when inputs are unchanged",
        factory=_make, capabilities=frozenset({"push", "cache-skip"}))]
