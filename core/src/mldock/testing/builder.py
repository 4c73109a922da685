"""Conformance tests for :class:`mldock.interfaces.Builder` backends (need a Docker engine).

Subclass :class:`BuilderContract`, set ``record`` and give a ``builder`` fixture built through the
record's factory. The tests build tiny images
``FROM`` :attr:`BuilderContract.base_image` (no pull is attempted: the image must exist locally) and
remove every tag they create. Without an engine they skip, or fail when
``MLDOCK_REQUIRE_DOCKER=1``::

    class TestMyBuilder(BuilderContract):
        record = registered_record("builder", "mybuilder")

        @pytest.fixture
        def builder(self, tmp_path):
            return self.record.build(FactoryContext(project_dir=tmp_path))
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from mldock.errors import MldockError
from mldock.interfaces import Builder, BuildRequest, HealthCheck
from mldock.testing._common import Capability, ContractBase, require_capability
from mldock.testing.docker import require_docker, require_image

REPOSITORY = "mldock-contract-build"


@pytest.mark.docker
class BuilderContract(ContractBase):
    """What every builder promises: real images, skipped rebuilds, failures that name the step.

    Capability flags, from the record: ``supports_push`` (``push``; also set
    :attr:`push_repository` to a registry repository the test may push to, e.g.
    ``localhost:5000/mldock-contract``), ``supports_cache_skip`` (``cache-skip``).
    """

    concern = "builder"
    supports_push = Capability("push")
    supports_cache_skip = Capability("cache-skip")
    push_repository: str | None = None
    base_image = os.environ.get("MLDOCK_TEST_BASE_IMAGE", "python:3.11-slim")

    @pytest.fixture
    def builder(self) -> Builder:
        """The builder under test. Override this fixture in your subclass."""
        raise NotImplementedError(f"{type(self).__name__} must define a `builder` fixture")

    @pytest.fixture
    def docker_engine(self) -> Iterator[Any]:
        """A pinged docker client (skip/fail without one) and the base image present."""
        client = require_docker()
        require_image(client, self.base_image)
        yield client
        client.close()

    @pytest.fixture
    def tag(self, docker_engine: Any) -> Iterator[str]:
        """A unique image tag, removed (only that tag) after the test."""
        tag = f"{REPOSITORY}:{uuid.uuid4().hex[:12]}"
        yield tag
        try:  # remove our tags of the image only (a builder may add ``:latest``), never others
            tags = docker_engine.images.get(tag).tags
        except Exception:  # noqa: BLE001 - the test may not have built it
            return
        for name in tags:
            if name.startswith(f"{REPOSITORY}:"):
                with contextlib.suppress(Exception):  # best-effort cleanup
                    docker_engine.images.remove(name)

    @pytest.fixture
    def push_target(self) -> str | None:
        """The registry repository :meth:`test_push` pushes to: :attr:`push_repository` unless
        overridden (e.g. ``f"{registry.host}/mldock-contract"`` on a registry the test starts)."""
        return self.push_repository

    @pytest.fixture
    def push_auth(self) -> Mapping[str, str] | None:
        """Credentials for ``push_target`` (``{"username", "password"}``); None: the engine's."""
        return None

    def request(self, context: Path, tag: str, *steps: str, **kwargs: Any) -> BuildRequest:
        """A BuildRequest for a Dockerfile of ``FROM base_image`` plus ``steps``."""
        context.mkdir(parents=True, exist_ok=True)
        dockerfile = "\n".join([f"FROM {self.base_image}", *steps]) + "\n"
        return BuildRequest(context_dir=context, dockerfile=dockerfile, tag=tag, **kwargs)

    def test_build_produces_image(self, builder: Builder, docker_engine: Any, tag: str,
                                  tmp_path: Path) -> None:
        """A tiny Dockerfile builds into an image that exists, with the requested labels.

        Usually fails when the build stream's errors are not checked, or labels are dropped.
        """
        (tmp_path / "ctx").mkdir()
        (tmp_path / "ctx" / "hello.txt").write_text("hello")
        request = self.request(tmp_path / "ctx", tag, "COPY hello.txt /hello.txt",
                               "RUN test -s /hello.txt", labels={"org.mldock.contract": "yes"})
        result = builder.build(request)
        assert result.tag == tag and not result.skipped
        assert result.image_id.startswith("sha256:")
        assert builder.exists(tag)
        image = docker_engine.images.get(tag)
        assert image.id == result.image_id
        assert image.labels.get("org.mldock.contract") == "yes"

    def test_extra_files_join_the_context(self, builder: Builder, tag: str, tmp_path: Path
                                          ) -> None:
        """``extra_files`` are available to COPY even though they are not in the context folder.

        Usually fails when the builder sends the context folder as is, ignoring extra_files.
        """
        request = self.request(tmp_path / "ctx", tag, "COPY extra.txt /extra.txt",
                               "RUN grep -q generated /extra.txt",
                               extra_files={"extra.txt": b"generated\n"})
        assert not builder.build(request).skipped
        assert not (tmp_path / "ctx" / "extra.txt").exists(), "the user's folder was modified"

    def test_second_build_with_same_tag_is_skipped(self, builder: Builder, tag: str,
                                                   tmp_path: Path) -> None:
        """Building a tag that already exists does nothing and says so (``skipped=True``).

        Usually fails when the builder checks the build cache instead of the tag.
        """
        require_capability(self, "supports_cache_skip")
        request = self.request(tmp_path / "ctx", tag, "RUN echo once > /once.txt")
        first = builder.build(request)
        second = builder.build(request)
        assert second.skipped and second.image_id == first.image_id

    def test_failing_step_raises_naming_it(self, builder: Builder, tag: str, tmp_path: Path
                                           ) -> None:
        """A RUN step that exits non-zero raises MldockError whose message names that step.

        Usually fails when only the stream's last line is reported, or the error is swallowed and
        the build reported as a success (a real bug of earlier tools).
        """
        request = self.request(tmp_path / "ctx", tag, "RUN echo fine",
                               "RUN sh -c 'exit 3'")
        with pytest.raises(MldockError) as caught:
            builder.build(request)
        assert "exit 3" in str(caught.value), str(caught.value)
        assert not builder.exists(tag)

    def test_exists_is_false_for_unknown_tag(self, builder: Builder, tag: str) -> None:
        """exists() of a tag never built is False, not an exception.

        Usually fails when the SDK's ImageNotFound escapes.
        """
        assert builder.exists(tag) is False

    def test_check_returns_health_checks(self, builder: Builder, docker_engine: Any) -> None:
        """check() with a running engine returns HealthChecks that all pass.

        Usually fails when the check raises instead of reporting.
        """
        checks = builder.check()
        assert all(isinstance(c, HealthCheck) and c.ok for c in checks), checks

    def test_push(self, builder: Builder, docker_engine: Any, tag: str, tmp_path: Path,
                  push_target: str | None, push_auth: Mapping[str, str] | None) -> None:
        """push() sends the image to the ``push_target`` repository and returns its registry digest.

        Usually fails when push stream errors (denied, unknown blob) are not checked line by line,
        when ``auth`` is not passed to the engine, or when the digest is the local image id.
        """
        require_capability(self, "supports_push")
        if not push_target:
            pytest.skip(f"{type(self).__name__} gives no push_target: override that fixture (or set"
                        " push_repository) to a registry repository the test may push to")
        builder.build(self.request(tmp_path / "ctx", tag, "RUN echo push > /push.txt"))
        pushed = f"{push_target}:{tag.rpartition(':')[2]}"
        try:
            result = builder.push(tag, push_target, auth=push_auth)
        finally:  # the builder tags the image as push_target:<tag> before pushing: remove it
            with contextlib.suppress(Exception):
                docker_engine.images.remove(pushed)
        assert result.reference == pushed, result
        assert result.digest.startswith("sha256:"), result
        assert result.digest != docker_engine.images.get(tag).id, "a local id, not the registry's"
