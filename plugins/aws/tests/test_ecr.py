"""ECR: the repository and token from moto's ECR API, the push itself into a real registry.

moto's ECR creates repositories and hands out a token (``AWS:<account>-auth-token``) whose
``proxyEndpoint`` has no registry behind it. The ``registry`` fixture is Debian's docker-registry
with htpasswd auth for exactly that user and password, and ``ecr_registry`` points the push at it,
so the path token → base64 → docker auth → push → digest runs for real.
"""

from __future__ import annotations

import uuid

import pytest
from mldock.errors import MldockError
from mldock.interfaces import DeployRequest
from mldock.local.build import DockerBuilder
from mldock_aws.names import repository_name

ACCOUNT_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
TOKEN = "123456789012-auth-token"  # what moto's token decodes to after "AWS:"


def test_registry_target_creates_the_repository_and_decodes_the_token(make_deployer, aws):
    name = f"mldock-aws-{uuid.uuid4().hex[:8]}"
    deployer = make_deployer(project="iris")
    target = deployer.registry_target(f"{name}:0123abcd")
    assert target.repository == f"{ACCOUNT_HOST}/{name}"
    assert target.auth == {"username": "AWS", "password": TOKEN}
    ecr = aws("ecr")
    (repo,) = ecr.describe_repositories(repositoryNames=[name])["repositories"]
    assert repo["imageTagMutability"] == "MUTABLE"
    tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
    assert {"Key": "mldock.project", "Value": "iris"} in tags
    assert deployer.registry_target(f"{name}:other").repository == target.repository  # exists


def test_repository_and_registry_overrides(make_deployer, aws):
    deployer = make_deployer(ecr_repository="team/iris-models", ecr_registry="127.0.0.1:5999")
    target = deployer.registry_target("iris:0123abcd")
    assert target.repository == "127.0.0.1:5999/team/iris-models"
    assert aws("ecr").describe_repositories(repositoryNames=["team/iris-models"])["repositories"]


@pytest.mark.parametrize(("image", "name"), [
    ("iris:0123", "iris"), ("team/iris:0123", "team/iris"),
    ("registry.example.com:5000/team/iris:0123", "team/iris"),
    (f"{ACCOUNT_HOST}/iris@sha256:{'a' * 64}", "iris"), ("localhost/iris", "iris")])
def test_repository_names_from_image_references(image, name):
    assert repository_name(image) == name


# --- pushing for real ----------------------------------------------------------------------------


@pytest.mark.docker
def test_push_with_the_ecr_token_into_a_real_registry(make_deployer, registry, tiny_image,
                                                      pushed_repos):
    """What core does before training: registry_target, then its builder's push."""
    deployer = make_deployer(ecr_registry=registry.host)
    target = deployer.registry_target(tiny_image)
    pushed_repos.append(tiny_image.split(":")[0])
    lines: list[str] = []
    result = DockerBuilder().push(tiny_image, target.repository, auth=target.auth,
                                  progress=lines.append)
    name, tag = tiny_image.split(":")
    assert target.repository == f"{registry.host}/{name}"
    assert result.digest == registry.manifest_digest(name, tag)
    assert TOKEN not in "\n".join(lines)


@pytest.mark.docker
def test_deploy_pushes_a_local_image_first(make_deployer, registry, tiny_image, aws, bucket,
                                           shapes, pushed_repos):
    """A run trained locally records a local tag: deploy pushes it and gives SageMaker the
    digest reference."""
    deployer = make_deployer(ecr_registry=registry.host)
    pushed_repos.append(tiny_image.split(":")[0])
    name, lines = f"ep-{uuid.uuid4().hex[:8]}", []
    deployer.deploy(DeployRequest(name=name, image=tiny_image, run_id="r1",
                                  model_uri=f"s3://{bucket}/m.tar.gz"), progress=lines.append)
    repo, tag = tiny_image.split(":")
    image = shapes.last("CreateModel")["PrimaryContainer"]["Image"]
    assert image == f"{registry.host}/{repo}@{registry.manifest_digest(repo, tag)}"
    assert f"pushing {tiny_image} to {registry.host}/{repo}" in lines
    assert deployer._image(image, lines.append) == image  # now used as it is: no second push
    deployer.undeploy(name)


@pytest.mark.docker
def test_deploy_of_an_image_that_is_nowhere(make_deployer, registry, engine):
    deployer = make_deployer(ecr_registry=registry.host)
    with pytest.raises(MldockError) as info:
        deployer.deploy(DeployRequest(name="ep-x", image=f"never-built-{uuid.uuid4().hex[:6]}:1",
                                      run_id="r", model_uri="s3://b/m.tar.gz"))
    assert "neither in ECR nor on this machine" in info.value.message
    assert "mldock build" in info.value.hint
    with pytest.raises(MldockError) as info:
        deployer.deploy(DeployRequest(name="ep-x", image="ghcr.io/me/iris:1", run_id="r",
                                      model_uri="s3://b/m.tar.gz"))
    assert "SageMaker cannot pull ghcr.io/me/iris:1: it is not in Amazon ECR" in info.value.message
    assert "mldock --env aws push" in info.value.hint
