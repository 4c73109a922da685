"""The built-in ``docker`` builder passes the builder conformance contract on the real engine.

The builder is built through its registered record's factory (as ``mldock build`` builds it), so
the capability flags come from what the record declares: ``push`` (pushed here to a real registry
on loopback that requires a login, the session's ``auth_registry``) and ``cache-skip``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from mldock.interfaces import Builder
from mldock.local.build import DockerBuilder
from mldock.records import FactoryContext
from mldock.testing import BuilderContract, registered_record
from mldock.testing.registry import LocalRegistry

pytestmark = pytest.mark.docker


class TestDockerBuilder(BuilderContract):
    record = registered_record("builder", "docker")

    @pytest.fixture
    def builder(self, tmp_path: Path) -> Builder:
        builder = self.record.build(FactoryContext(project_dir=tmp_path))
        assert isinstance(builder, DockerBuilder)
        return builder

    @pytest.fixture
    def push_target(self, auth_registry: LocalRegistry) -> str:
        """A repository of its own on the session's registry (it requires a login)."""
        return f"{auth_registry.host}/mldock-contract-{uuid.uuid4().hex[:8]}"

    @pytest.fixture
    def push_auth(self, auth_registry: LocalRegistry) -> dict[str, str] | None:
        return auth_registry.auth_config()

