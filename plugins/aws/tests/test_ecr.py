"""ECR: the repository and token from moto's ECR API; core's push with them into a real registry.

moto's ECR creates repositories and hands out a token (``AWS:<account>-auth-token``) whose
``proxyEndpoint`` has no registry behind it. The ``registry`` fixture is Debian's docker-registry
with htpasswd auth for exactly that user and password, and ``ecr_registry`` points the push at it,
so the path token → base64 → docker auth → push → digest runs for real.
"""

from __future__ import annotations

import uuid

import pytest
from mldock.errors import MldockError
from mldock.interfaces import BatchRequest, DeployRequest, TrainingJob
from mldock.local.build import DockerBuilder
from mldock.publish import publish
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


# --- pushing for real: core pushes, the deployer only says where -------------------------------


@pytest.mark.docker
def test_core_pushes_with_the_ecr_token_into_a_real_registry(make_deployer, registry, tiny_image,
                                                             pushed_repos):
    """What ``mldock --env aws train/deploy/batch/push`` do: registry_target, then core's
    publish with the builder; a second publish sends nothing."""
    deployer = make_deployer(ecr_registry=registry.host)
    pushed_repos.append(tiny_image.split(":")[0])
    lines: list[str] = []
    first = publish(tiny_image, deployer.registry_target(tiny_image), DockerBuilder(),
                    progress=lines.append)
    name, tag = tiny_image.split(":")
    digest = registry.manifest_digest(name, tag)
    assert (first.pinned, first.pushed) == (f"{registry.host}/{name}@{digest}", True)
    assert f"pushing {tiny_image} to {registry.host}/{name}" in lines
    assert TOKEN not in "\n".join(lines)
    again = publish(tiny_image, deployer.registry_target(tiny_image), DockerBuilder())
    assert (again.pinned, again.pushed) == (first.pinned, False)


@pytest.mark.docker
def test_deploy_runs_the_image_core_pushed(make_deployer, registry, tiny_image, bucket, shapes,
                                           pushed_repos):
    """A run trained locally records a local tag: core pushes it and SageMaker gets the digest
    reference; a reference already in the target's registry is used as it is."""
    deployer = make_deployer(ecr_registry=registry.host)
    pushed_repos.append(tiny_image.split(":")[0])
    pinned = publish(tiny_image, deployer.registry_target(tiny_image), DockerBuilder()).pinned
    again = publish(pinned, deployer.registry_target(pinned), DockerBuilder())
    assert (again.pinned, again.pushed) == (pinned, False)
    name = f"ep-{uuid.uuid4().hex[:8]}"
    deployer.deploy(DeployRequest(name=name, image=pinned, run_id="r1",
                                  model_uri=f"s3://{bucket}/m.tar.gz"))
    assert shapes.last("CreateModel")["PrimaryContainer"]["Image"] == pinned
    deployer.undeploy(name)


@pytest.mark.parametrize("image", ["iris:0123abcd", "ghcr.io/me/iris:1"])
def test_the_deployer_never_pushes_a_local_or_foreign_image(make_deployer, image):
    """The push path is core's: handed an image SageMaker cannot pull, the deployer refuses in
    one line (and no Docker engine is needed to say so)."""
    deployer = make_deployer()
    for call in (lambda: deployer.deploy(DeployRequest(name="ep-x", image=image, run_id="r",
                                                       model_uri="s3://b/m.tar.gz")),
                 lambda: deployer.batch(BatchRequest(run_id="r", image=image,
                                                     model_uri="s3://b/m.tar.gz",
                                                     input_uri="s3://b/in/",
                                                     output_uri="s3://b/out/")),
                 lambda: deployer.train(TrainingJob(run_id="r", image=image))):
        with pytest.raises(MldockError) as info:
            call()
        assert info.value.message == f"SageMaker cannot pull {image}: it is not in Amazon ECR"
        assert "mldock --env ENV push" in (info.value.hint or "")
