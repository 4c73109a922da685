"""Pushing through the Docker builder and core's one push path, into a real registry.

The registry is Debian's ``docker-registry`` on 127.0.0.1 behind htpasswd (``auth_registry`` from
``mldock.testing.fixtures``), as a cloud registry refuses an anonymous push; the image is a tiny
one built ``FROM`` the local base image. What is checked: the digest :meth:`DockerBuilder.push`
returns is the registry's own, a refused push is an error with a hint and never shows the
password, :meth:`DockerBuilder.pushed_digest` knows only what the registry really holds, and
:func:`mldock.publish.publish` pushes once, then skips, uses a reference already in the target's
registry as it is, and names an image that is nowhere.
"""

from __future__ import annotations

import base64
import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.interfaces import RegistryTarget
from mldock.local.build import DockerBuilder
from mldock.publish import publish
from mldock.testing.docker import require_docker, require_image
from mldock.testing.processes import http_request
from mldock.testing.registry import LocalRegistry

pytestmark = pytest.mark.docker



def delete_manifest(registry: LocalRegistry, repository: str, digest: str) -> None:
    """Delete a manifest, as a registry's retention policy would."""
    token = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    status, _, body = http_request("DELETE", f"{registry.url}/v2/{repository}/manifests/{digest}",
                                   headers={"Authorization": f"Basic {token}"})
    assert status == 202, (status, body[:300])


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    client = require_docker()
    yield client
    client.close()


@pytest.fixture
def registry(auth_registry: LocalRegistry) -> LocalRegistry:
    """The shared registry requiring a user and password (``mldock.testing.fixtures``)."""
    return auth_registry


@pytest.fixture
def image(engine: Any, registry: LocalRegistry, tmp_path: Path) -> Iterator[str]:
    """A tiny unique image ``mldock-push-<hex>:<hex>``; it and its pushed tags are removed."""
    base = os.environ.get("MLDOCK_TEST_BASE_IMAGE", "python:3.11-slim")
    require_image(engine, base)
    (tmp_path / "Dockerfile").write_text(f"FROM {base}\nLABEL mldock.test=push\n"
                                         f"RUN echo {uuid.uuid4().hex} > /opt/marker\n")
    name = f"mldock-push-{uuid.uuid4().hex[:8]}"
    tag = f"{name}:{uuid.uuid4().hex[:12]}"
    engine.images.build(path=str(tmp_path), tag=tag, rm=True, forcerm=True)
    yield tag
    for reference in (tag, f"{registry.host}/{name}:{tag.split(':')[1]}"):
        with contextlib.suppress(Exception):  # only what this test created; never pruned
            engine.images.remove(reference)


def repository(registry: LocalRegistry, image: str) -> str:
    return f"{registry.host}/{image.split(':')[0]}"


# --- the builder's push -------------------------------------------------------------------------


def test_push_returns_the_registrys_digest_and_never_shows_the_password(
        registry: LocalRegistry, image: str) -> None:
    lines: list[str] = []
    repo = repository(registry, image)
    result = DockerBuilder().push(image, repo, auth=registry.auth_config(), progress=lines.append)
    name, tag = image.split(":")
    assert result.reference == f"{repo}:{tag}"
    assert result.digest == registry.manifest_digest(name, tag)
    assert lines and str(registry.password) not in "\n".join(lines)


@pytest.mark.parametrize("auth", [None, {"username": "mldock", "password": "wrong"}],
                         ids=["no-credentials", "wrong-password"])
def test_a_refused_push_is_an_error_with_a_hint(
        registry: LocalRegistry, image: str, auth: dict[str, str] | None,
) -> None:
    with pytest.raises(MldockError) as info:
        DockerBuilder().push(image, repository(registry, image), auth=auth)
    assert info.value.message.startswith(f"push of {repository(registry, image)}:")
    assert "credentials" in (info.value.hint or "")
    assert str(registry.password) not in str(info.value)


def test_pushed_digest_knows_only_what_the_registry_holds(
        registry: LocalRegistry, image: str) -> None:
    builder, repo = DockerBuilder(), repository(registry, image)
    assert builder.pushed_digest(image, repo, auth=registry.auth_config()) is None  # not pushed
    digest = builder.push(image, repo, auth=registry.auth_config()).digest
    assert builder.pushed_digest(image, repo, auth=registry.auth_config()) == digest
    assert builder.pushed_digest(image, f"{repo}-other", auth=registry.auth_config()) is None
    delete_manifest(registry, image.split(":")[0], digest)  # retention removed it
    assert builder.pushed_digest(image, repo, auth=registry.auth_config()) is None


# --- core's push path ---------------------------------------------------------------------------


def test_publish_pushes_once_then_skips(registry: LocalRegistry, image: str) -> None:
    target = RegistryTarget(repository(registry, image), registry.auth_config())
    first_lines: list[str] = []
    first = publish(image, target, DockerBuilder(), progress=first_lines.append)
    name, tag = image.split(":")
    digest = registry.manifest_digest(name, tag)
    assert (first.pushed, first.digest) == (True, digest)
    assert first.pinned == f"{target.repository}@{digest}"
    assert f"pushing {image} to {target.repository}" in first_lines
    lines: list[str] = []
    again = publish(image, target, DockerBuilder(), progress=lines.append)
    assert (again.pushed, again.pinned, again.reference) == (False, first.pinned,
                                                             first.reference)
    assert lines == [f"{first.reference} is {digest} already: nothing to push"]


def test_publish_uses_a_reference_in_the_target_registry_as_is(
        registry: LocalRegistry, image: str) -> None:
    target = RegistryTarget(repository(registry, image), registry.auth_config())
    pinned = f"{registry.host}/elsewhere@sha256:{'0' * 64}"
    found = publish(pinned, target, DockerBuilder())
    assert (found.pinned, found.digest, found.pushed) == (pinned, f"sha256:{'0' * 64}", False)


def test_publish_falls_back_to_the_local_tag(registry: LocalRegistry, image: str) -> None:
    """A run trained on another target records that registry's reference; its local tag is
    pushed to this target instead."""
    target = RegistryTarget(repository(registry, image), registry.auth_config())
    found = publish(f"other.example.com/team/x@sha256:{'1' * 64}", target, DockerBuilder(),
                    fallback=[image])
    name, tag = image.split(":")
    assert found.pushed and found.image == image
    assert found.digest == registry.manifest_digest(name, tag)


def test_publish_of_an_image_that_is_nowhere(registry: LocalRegistry, engine: Any) -> None:
    target = RegistryTarget(f"{registry.host}/nothing", registry.auth_config())
    missing = f"never-built-{uuid.uuid4().hex[:8]}:1"
    with pytest.raises(NotFoundError) as info:
        publish(missing, target, DockerBuilder())
    assert f"image {missing} is not on this machine" in info.value.message
    assert "mldock build" in (info.value.hint or "")
    with pytest.raises(UsageError) as foreign:
        publish("ghcr.io/me/iris:1", target, DockerBuilder())
    assert foreign.value.message.startswith(f"ghcr.io/me/iris:1 is not in {registry.host}")
