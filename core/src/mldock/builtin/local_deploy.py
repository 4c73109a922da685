"""Built-in plugin ``local-deploy``: training and serving containers on the local Docker engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mldock.markers import hookimpl
from mldock.records import DeployerRecord, FactoryContext

if TYPE_CHECKING:  # the backend is imported by the factory, on first use
    from mldock.local.deploy import LocalDeployer


def _make(context: FactoryContext) -> LocalDeployer:
    from mldock.local.deploy import LocalDeployer

    return LocalDeployer(project_dir=context.project_dir)


@hookimpl
def mldock_deployers() -> list[DeployerRecord]:
    return [DeployerRecord(
        name="local", summary="Local Docker containers for training and serving",
        factory=_make, capabilities=frozenset({"training", "serving"}))]
