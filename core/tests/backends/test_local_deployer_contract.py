"""The built-in ``local`` deployer passes the deployer conformance contract on a real engine.

The deployer is built through its registered record's factory, as ``mldock deploy`` builds it, and
the contract's capability flags come from that record (``training``, ``serving``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mldock.interfaces import Deployer
from mldock.local.deploy import LocalDeployer
from mldock.records import FactoryContext
from mldock.testing import DeployerContract, registered_record

pytestmark = pytest.mark.docker


class TestLocalDeployer(DeployerContract):
    record = registered_record("deployer", "local")

    @pytest.fixture
    def deployer(self, tmp_path: Path) -> Deployer:
        deployer = self.record.build(FactoryContext(project_dir=tmp_path / "contract"))
        assert isinstance(deployer, LocalDeployer)
        return deployer
