"""Entry point ``aws`` (group ``mldock``): registers the ``sagemaker`` deployer.

Imports only mldock and the standard library: this module is loaded by every ``mldock`` command,
``--help`` included, and boto3 costs ~0.15 s to import. The factory imports the implementation (and
with it boto3) only when a command actually needs the deployer.
"""

from __future__ import annotations

from typing import Any

from mldock.markers import hookimpl
from mldock.records import DeployerRecord, FactoryContext

CAPABILITIES = frozenset({"training", "serving", "batch", "distributed", "spot", "registry"})


def make_deployer(context: FactoryContext) -> Any:
    """Build the SageMaker deployer from ``[deploy.sagemaker]`` and the project's config."""
    from mldock_aws.deployer import SageMakerDeployer

    return SageMakerDeployer.from_context(context)


@hookimpl
def mldock_deployers() -> list[DeployerRecord]:
    return [DeployerRecord(
        name="sagemaker",
        summary="AWS SageMaker: training jobs, endpoints and batch transform; images pushed to ECR",
        factory=make_deployer, config_model="mldock_aws.config:SageMakerOptions",
        capabilities=CAPABILITIES)]
