"""mldock's conformance kit: one contract test class per interface, for plugin authors.

Enable it as a pytest plugin (``pytest -p mldock.testing`` or ``pytest_plugins = ["mldock.testing"]``
in your top-level conftest): that registers the ``docker`` marker and the ``docker_client`` fixture.
Then subclass a contract in a test module, give its factory fixture and declare capabilities::

    from mldock.testing import ArtifactStoreContract

    class TestMyStore(ArtifactStoreContract):
        supports_delete = True

        @pytest.fixture
        def store(self, tmp_path):
            return MyStore(tmp_path)

A test for a capability your backend does not declare is skipped with a reason, never deleted; every
test's docstring says what it checks and what usually makes it fail. Builder and deployer contracts
need a Docker engine: they skip without one, and fail when ``MLDOCK_REQUIRE_DOCKER=1``.

This package imports pytest; mldock itself never imports it.
"""

from __future__ import annotations

from typing import Any

from mldock.testing.builder import BuilderContract
from mldock.testing.deploy import DeployerContract
from mldock.testing.docker import docker_client, require_docker
from mldock.testing.registration import RegistrationContract
from mldock.testing.storage import ArtifactStoreContract
from mldock.testing.tracking import TrackerContract

__all__ = [
    "ArtifactStoreContract",
    "BuilderContract",
    "DeployerContract",
    "RegistrationContract",
    "TrackerContract",
    "docker_client",
    "require_docker",
]


def pytest_configure(config: Any) -> None:
    """Register the ``docker`` marker (pytest calls this when the plugin is enabled)."""
    config.addinivalue_line(
        "markers",
        "docker: needs a real Docker engine (fails instead of skipping when"
        " MLDOCK_REQUIRE_DOCKER=1)")
