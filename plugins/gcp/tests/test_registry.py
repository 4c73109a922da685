"""Artifact Registry: the repository from the fake's Artifact Registry API and the access token
from its OAuth endpoint; core's push with them into a real registry.

``gcp_registry`` is Debian's docker-registry behind htpasswd for user ``oauth2accesstoken`` with
the access token the fake's ``/token`` issues as password, and ``registry_host`` points the push
at it, so the path key file → signed JWT → token → docker auth → push → digest runs for real.
"""

from __future__ import annotations

import contextlib
import os
import uuid

import pytest
from mldock.errors import MldockError
from mldock_gcp.config import VertexOptions
from mldock_gcp.registry import registry_host, require_pullable
from vertex_fake import error_info


def test_the_host_is_the_repository_location_s_unless_overridden():
    assert registry_host(VertexOptions(region="europe-west4")) == "europe-west4-docker.pkg.dev"
    assert registry_host(VertexOptions(registry_location="us")) == "us-docker.pkg.dev"
    assert registry_host(VertexOptions(registry_host="127.0.0.1:5000")) == "127.0.0.1:5000"


def test_only_images_vertex_can_pull_are_accepted():
    pinned = "us-central1-docker.pkg.dev/p/mldock/iris@sha256:" + "a" * 64
    assert require_pullable(pinned, VertexOptions()) == pinned
    local = VertexOptions(registry_host="127.0.0.1:5000")
    assert require_pullable("127.0.0.1:5000/p/mldock/iris:1", local)
    with pytest.raises(MldockError) as info:
        require_pullable("iris:0123", VertexOptions())
    assert "not in Artifact Registry" in info.value.message and "mldock --env" in info.value.hint
    assert info.value.exit_code == 2


@pytest.fixture
def make_deployer(vertex_fake, gcp_service_account, monkeypatch):
    """``make_deployer(**option_overrides)``: a deployer on the fake with the service-account
    key as Application Default Credentials (the fake's ``/token`` issues its token)."""
    from mldock_gcp.deployer import VertexDeployer

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(gcp_service_account.path))

    def make(**overrides):
        values = {"project": vertex_fake.project, "api_endpoint": vertex_fake.url,
                  "repository": f"mldock-{uuid.uuid4().hex[:8]}", **overrides}
        return VertexDeployer(VertexOptions(**values), project="Iris", poll_s=0.05)

    return make


def test_registry_target_creates_the_repository_and_fetches_a_token(make_deployer, vertex_fake):
    deployer = make_deployer(region="europe-west4", labels={"team": "ml"})
    repository = deployer.options.repository
    grants = len(vertex_fake.token_grants)
    target = deployer.registry_target("iris:0123abcd")
    assert target.repository == (f"europe-west4-docker.pkg.dev/{vertex_fake.project}/"
                                 f"{repository}/iris")
    assert target.auth == {"username": "oauth2accesstoken", "password": vertex_fake.access_token}
    assert len(vertex_fake.token_grants) > grants  # the token came from the token endpoint
    found = vertex_fake.resources["repositories"][
        f"projects/{vertex_fake.project}/locations/europe-west4/repositories/{repository}"]
    assert found["format"] == "DOCKER"
    assert found["labels"] == {"mldock-project": "iris", "mldock-role": "registry", "team": "ml"}
    creates = len(vertex_fake.requests_to("POST /v1/.*/repositories$"))
    again = deployer.registry_target("team/iris:other")  # the repository exists: reused
    assert again.repository == target.repository
    assert len(vertex_fake.requests_to("POST /v1/.*/repositories$")) == creates


def test_the_repository_location_and_host_overrides(make_deployer, vertex_fake):
    deployer = make_deployer(registry_location="us", registry_host="127.0.0.1:5999")
    target = deployer.registry_target("iris:1")
    assert target.repository == (f"127.0.0.1:5999/{vertex_fake.project}/"
                                 f"{deployer.options.repository}/iris")
    assert (f"projects/{vertex_fake.project}/locations/us/repositories/"
            f"{deployer.options.repository}") in vertex_fake.resources["repositories"]


def test_a_refused_creation_names_the_role_to_grant(make_deployer, vertex_fake):
    deployer = make_deployer()
    vertex_fake.fail_next(r"POST /v1/.*/repositories$", 403, "PERMISSION_DENIED",
                          "Permission 'artifactregistry.repositories.create' denied on resource",
                          [error_info("IAM_PERMISSION_DENIED", "artifactregistry.googleapis.com",
                                      permission="artifactregistry.repositories.create")])
    with pytest.raises(MldockError) as info:
        deployer.registry_target("iris:1")
    text = f"{info.value.message} {info.value.hint}"
    assert "roles/artifactregistry.admin" in text
    assert "\n" not in info.value.message


def test_a_repository_created_meanwhile_is_used(make_deployer, vertex_fake):
    """Two pushes at once: the second create answers ALREADY_EXISTS, which is fine."""
    deployer = make_deployer()
    vertex_fake.fail_next(r"POST /v1/.*/repositories$", 409, "ALREADY_EXISTS",
                          "the repository already exists")
    assert deployer.registry_target("iris:1").repository.endswith("/iris")


# --- pushing for real: core pushes, the deployer only says where -------------------------------


@pytest.fixture(scope="module")
def tiny_image(docker_engine, tmp_path_factory):
    """A small local image ``mldock-gcp-tiny:<hex>`` (FROM the base image), removed at the end."""
    from mldock.testing.docker import require_image

    base = os.environ.get("MLDOCK_TEST_BASE_IMAGE", "python:3.11-slim")
    require_image(docker_engine, base)
    context = tmp_path_factory.mktemp("gcp-tiny-image")
    (context / "Dockerfile").write_text(f"FROM {base}\nLABEL mldock.test=gcp\n"
                                        f"RUN echo {uuid.uuid4().hex} > /opt/marker\n")
    tag = f"mldock-gcp-tiny:{uuid.uuid4().hex[:12]}"
    docker_engine.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    yield tag
    remove_tags(docker_engine, tag.rsplit(":", 1)[0], keep_parents=False)


def remove_tags(client, repository: str, *, keep_parents: bool = True) -> None:
    """Remove every tag of ``repository`` (nothing is ever pruned)."""
    from docker.errors import APIError, ImageNotFound

    for image in client.images.list(name=repository):
        for tag in image.tags:
            if tag.rsplit(":", 1)[0] == repository:
                with contextlib.suppress(ImageNotFound, APIError):
                    client.images.remove(tag, noprune=keep_parents)


@pytest.mark.docker
def test_core_pushes_with_the_access_token_into_a_real_registry(make_deployer, gcp_registry,
                                                                tiny_image, docker_engine,
                                                                vertex_fake):
    """What ``mldock --env gcp train/deploy/batch/push`` do: registry_target, then core's
    publish with the builder; the pinned reference is what Vertex runs, and passes the check;
    a second publish sends nothing."""
    from mldock.local.build import DockerBuilder
    from mldock.publish import publish

    deployer = make_deployer(registry_host=gcp_registry.host)
    target = deployer.registry_target(tiny_image)
    assert target.auth["password"] == vertex_fake.access_token
    try:
        first = publish(tiny_image, target, DockerBuilder())
        assert first.pushed and first.digest and first.digest.startswith("sha256:")
        assert first.pinned == f"{target.repository}@{first.digest}"
        assert deployer._image(first.pinned) == first.pinned  # Vertex could pull it
        second = publish(tiny_image, deployer.registry_target(tiny_image), DockerBuilder())
        assert (second.pushed, second.digest) == (False, first.digest)
    finally:
        remove_tags(docker_engine, target.repository, keep_parents=False)


@pytest.mark.docker
def test_a_wrong_token_is_refused_by_the_registry(make_deployer, gcp_registry, tiny_image,
                                                  docker_engine):
    """The registry really checks the password: a stale token fails the push, in one line."""
    from mldock.interfaces import RegistryTarget
    from mldock.local.build import DockerBuilder
    from mldock.publish import publish

    target = make_deployer(registry_host=gcp_registry.host).registry_target(tiny_image)
    stale = RegistryTarget(target.repository, {"username": "oauth2accesstoken",
                                               "password": "ya29.expired"})
    try:
        with pytest.raises(MldockError):
            publish(tiny_image, stale, DockerBuilder())
    finally:
        remove_tags(docker_engine, target.repository, keep_parents=False)
