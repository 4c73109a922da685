"""ACR: the registry's login server from Resource Manager, the Entra ID → ACR exchange against
the fake's stand-in, and core's push with that token into a real registry.

The fake plays Resource Manager (the workspace names its registry; the registry resource names
its login server, the fake itself) and ACR's ``/oauth2/exchange``. The push goes to Debian's
``docker-registry`` behind htpasswd for exactly the null-GUID user and the refresh token the
exchange hands out (``registry_host``): token → docker auth → push → digest runs for real.
"""

from __future__ import annotations

import contextlib
import urllib.parse
import uuid
from collections.abc import Iterator

import pytest
from azureml_parts import build_deployer
from mldock.errors import MldockError
from mldock.local.build import DockerBuilder
from mldock.publish import publish
from mldock.testing.docker import require_docker, require_image
from mldock_azure.names import ACR_USER
from mldock_azure.registry import require_pullable, tenant_of


@pytest.fixture(scope="module")
def acr(start_registry, azureml_fake):
    return start_registry((ACR_USER, azureml_fake.acr_refresh_token))


@pytest.fixture(scope="module")
def tiny_image(tmp_path_factory) -> Iterator[str]:
    """A small local image ``mldock-azure-tiny:<hex>``, removed at the end with its pushes."""
    engine = require_docker()
    require_image(engine, "python:3.11-slim")
    context = tmp_path_factory.mktemp("tiny-image")
    (context / "Dockerfile").write_text("FROM python:3.11-slim\nLABEL mldock.test=azure\n"
                                        f"RUN echo {uuid.uuid4().hex} > /opt/marker\n")
    tag = f"mldock-azure-tiny-{uuid.uuid4().hex[:8]}:{uuid.uuid4().hex[:12]}"
    engine.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    yield tag
    image = engine.images.get(tag)
    for name in image.tags:
        with contextlib.suppress(Exception):
            engine.images.remove(name, force=True)
    engine.close()


def exchanges(fake) -> list[dict[str, str]]:
    return [dict(urllib.parse.parse_qsl(r.body)) for r in fake.sent("POST", "/oauth2/exchange$")]


def test_the_workspace_registry_and_a_token_exchanged_just_now(azureml_fake, azureml_env):
    deployer = build_deployer(azureml_fake)
    before = len(exchanges(azureml_fake))
    target = deployer.registry_target("Team/Iris:0123abcd")
    server = azureml_fake.registry_login_server
    assert target.repository == f"{server}/team/iris"
    assert target.auth == {"username": ACR_USER, "password": azureml_fake.acr_refresh_token}
    (sent,) = exchanges(azureml_fake)[before:]
    assert (sent["grant_type"], sent["service"], sent["tenant"]) == (
        "access_token", server, azureml_fake.tenant_id)
    assert tenant_of(sent["access_token"]) == azureml_fake.tenant_id
    assert azureml_fake.sent("GET", f"/registries/{azureml_fake.registry_name}$")
    deployer.registry_target("iris:other")  # a token per push: never cached
    assert len(exchanges(azureml_fake)) == before + 2


def test_a_refused_exchange_names_the_role(azureml_fake, azureml_env):
    azureml_fake.fail_next("POST", "/oauth2/exchange$", 401, "UNAUTHORIZED", "token rejected")
    with pytest.raises(MldockError) as info:
        build_deployer(azureml_fake).registry_target("iris:1")
    assert "refused your Entra ID token (HTTP 401)" in info.value.message
    assert "'AcrPush'" in info.value.hint


def test_the_admin_user_skips_the_exchange(azureml_fake, azureml_env, monkeypatch):
    monkeypatch.setenv("MLDOCK_TEST_ACR_PASSWORD", "s3cret")
    deployer = build_deployer(azureml_fake, registry="myregistry01", registry_admin_user="admin",
                              registry_admin_password="env:MLDOCK_TEST_ACR_PASSWORD")
    before = len(exchanges(azureml_fake))
    target = deployer.registry_target("iris:1")
    assert target.repository == "myregistry01.azurecr.io/iris"
    assert target.auth == {"username": "admin", "password": "s3cret"}
    assert len(exchanges(azureml_fake)) == before


@pytest.mark.docker
def test_core_pushes_with_the_exchanged_token_into_a_real_registry(azureml_fake, azureml_env,
                                                                   acr, tiny_image):
    """What ``mldock --env azure train/deploy/batch/push`` do: registry_target, then core's
    publish with the builder; the digest is the registry's; a second publish sends nothing."""
    deployer = build_deployer(azureml_fake, registry_host=acr.host)
    lines: list[str] = []
    first = publish(tiny_image, deployer.registry_target(tiny_image), DockerBuilder(),
                    progress=lines.append)
    name, tag = tiny_image.split(":")
    digest = acr.manifest_digest(name, tag)
    assert (first.pinned, first.digest, first.pushed) == (f"{acr.host}/{name}@{digest}", digest,
                                                          True)
    assert azureml_fake.acr_refresh_token not in "\n".join(lines)
    again = publish(tiny_image, deployer.registry_target(tiny_image), DockerBuilder())
    assert (again.pinned, again.pushed) == (first.pinned, False)
    assert require_pullable(first.pinned, deployer.options) == first.pinned


@pytest.mark.docker
def test_without_the_token_the_registry_refuses(acr, tiny_image):
    """The registry really checks: the same push with a wrong password fails in one line."""
    from mldock.interfaces import RegistryTarget

    wrong = RegistryTarget(repository=f"{acr.host}/refused",
                           auth={"username": ACR_USER, "password": "not-the-token"})
    with pytest.raises(MldockError, match=r"push of .* failed"):
        publish(tiny_image, wrong, DockerBuilder())


def test_only_acr_images_are_pullable(azureml_fake):
    options = build_deployer(azureml_fake, registry_host="127.0.0.1:5999").options
    digest = "@sha256:" + "a" * 64
    assert require_pullable("myreg12.azurecr.io/iris" + digest, options)
    assert require_pullable("127.0.0.1:5999/iris" + digest, options)
    for image in ("iris:0123", "ghcr.io/me/iris:1"):
        with pytest.raises(MldockError, match="not in an Azure Container Registry"):
            require_pullable(image, options)
    assert tenant_of("not-a-jwt") is None
