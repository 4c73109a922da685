"""mldock's conformance kit: one contract test class per interface, for plugin authors.

Enable it as a pytest plugin (``pytest -p mldock.testing``, or ``pytest_plugins =
["mldock.testing"]`` in your top-level conftest): that registers the ``docker`` marker and the
``docker_client`` fixture, and refuses skip marks on contract tests. Then subclass a contract in a
test module, point it at your registered record and build the backend through its factory::

    from mldock.records import FactoryContext
    from mldock.testing import ArtifactStoreContract, registered_record

    class TestMyStore(ArtifactStoreContract):
        record = registered_record("storage", "mystore")
        narrowed = {"file-modes": "the service keeps no permission bits"}  # optional

        @pytest.fixture
        def store(self, tmp_path):
            return self.record.build(FactoryContext(uri=f"mystore://{tmp_path}"))

The kit is closed. Capability flags (``supports_*``) come from the record's ``capabilities``; a
class may only narrow them, with a reason, and a test of a capability the backend lacks is skipped
with that reason. A contract test may not be overridden or skipped: the only allowed override is a
known failure, ``@expected_failure(reason=...)`` (a strict xfail). Every test's docstring says what
it checks and what usually makes it fail. Builder and deployer contracts need a Docker engine: they
skip without one, and fail when ``MLDOCK_REQUIRE_DOCKER=1``.

This package imports pytest; mldock itself never imports it.
"""

from __future__ import annotations

from mldock.testing._common import (
    Capability,
    ContractError,
    expected_failure,
    registered_record,
)
from mldock.testing._hooks import pytest_configure as pytest_configure  # the plugin's hooks
from mldock.testing._hooks import pytest_runtest_makereport as pytest_runtest_makereport
from mldock.testing._hooks import pytest_runtest_setup as pytest_runtest_setup
from mldock.testing.builder import BuilderContract
from mldock.testing.deploy import DeployerContract
from mldock.testing.docker import docker_client, require_docker
from mldock.testing.registration import RegistrationContract
from mldock.testing.storage import ArtifactStoreContract
from mldock.testing.tracking import TrackerContract
from mldock.testing.tuning import TuningContract, TuningReadback

__all__ = [
    "ArtifactStoreContract",
    "BuilderContract",
    "Capability",
    "ContractError",
    "DeployerContract",
    "RegistrationContract",
    "TrackerContract",
    "TuningContract",
    "TuningReadback",
    "docker_client",
    "expected_failure",
    "registered_record",
    "require_docker",
]

