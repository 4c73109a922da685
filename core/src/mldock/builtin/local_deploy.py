"""Built-in plugin ``local-deploy``: training and serving containers on the local Docker engine."""

from __future__ import annotations

from mldock.markers import hookimpl
from mldock.records import DeployerRecord, FactoryContext


def _make(context: FactoryContext):
    from mldock.local.deploy import LocalDeployer

    return LocalDeployer(project_dir=context.project_dir)


@hookimpl
def mldock_deployers():
    return [DeployerRecord(
        name="local", summary="Local Docker containers for training and serving",
        factory=_make, capabilities=frozenset({"training", "serving"}))]
