"""The package registers the ``sagemaker`` deployer without importing boto3 or docker."""

from __future__ import annotations

from typing import ClassVar

from mldock.testing import RegistrationContract


class TestRegistration(RegistrationContract):
    entry_point_name = "aws"
    distribution = "mldock-aws"
    expected: ClassVar[dict[str, list[str]]] = {"deployer": ["sagemaker"]}


def test_capabilities_are_declared_honestly():
    """core pushes before training only for deployers with ``registry``; batch needs ``batch``."""
    from mldock_aws.plugin import mldock_deployers

    (record,) = mldock_deployers()
    assert record.name == "sagemaker"
    assert record.capabilities == {"training", "serving", "batch", "distributed", "spot",
                                   "registry", "tuning"}
    assert record.tuning is not None and "grid" in record.tuning.strategies
    assert record.load_config_model().__name__ == "SageMakerOptions"
