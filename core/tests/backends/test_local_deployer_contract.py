"""The built-in ``local`` deployer passes the deployer conformance contract on a real engine."""

from __future__ import annotations

import pytest

from mldock.local.deploy import LocalDeployer
from mldock.testing import DeployerContract

pytestmark = pytest.mark.docker


class TestLocalDeployer(DeployerContract):
    supports_serving = True
    supports_training = True

    @pytest.fixture
    def deployer(self, tmp_path):
        return LocalDeployer(project_dir=tmp_path)
