"""ECR: the repository an image is pushed to, with a token fetched just before the push.

``mldock --env aws push`` and ``mldock --env aws train`` ask :func:`registry_target` where to push;
core then pushes with its builder (which checks every stream line) and hands the deployer
``repo@sha256:…``. ``deploy`` and ``batch`` of a run whose image was never pushed (trained
locally) push it here with the same builder.
"""

from __future__ import annotations

import base64
from typing import Any

from mldock.errors import MldockError
from mldock.interfaces import ProgressSink, RegistryTarget, null_progress

from mldock_aws.clients import AwsClients
from mldock_aws.errors import translated
from mldock_aws.names import TAG_PROJECT, image_host, is_ecr, repository_name


def ensure_repository(clients: AwsClients, name: str, tags: dict[str, str]) -> str:
    """Create the ECR repository ``name`` if missing; return its URI (``host/name``)."""
    ecr = clients.ecr
    with translated(f"create the ECR repository {name!r}", resource=f"ECR repository {name!r}"):
        try:
            found = ecr.create_repository(
                repositoryName=name, imageTagMutability="MUTABLE",
                imageScanningConfiguration={"scanOnPush": False},
                tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())])
        except ecr.exceptions.RepositoryAlreadyExistsException:
            found = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
            return str(found["repositoryUri"])
    return str(found["repository"]["repositoryUri"])


def authorization(clients: AwsClients) -> tuple[str, dict[str, str]]:
    """``(registry host, {"username": "AWS", "password": token})`` from a fresh ECR token.

    The token is valid for 12 hours, so it is fetched per push and never stored.
    """
    with translated("get an ECR login token"):
        data = clients.ecr.get_authorization_token()["authorizationData"][0]
    try:
        user, _, token = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise MldockError("ECR returned an authorization token that is not base64 'user:token'",
                          hint="retry; if it persists, check the ECR endpoint in use") from None
    host = str(data.get("proxyEndpoint", "")).split("://", 1)[-1].rstrip("/")
    return host, {"username": user or "AWS", "password": token}


def registry_target(clients: AwsClients, image: str, *, repository: str | None,
                    registry: str | None, project: str) -> RegistryTarget:
    """Where ``image`` goes: ``<account>.dkr.ecr.<region>.amazonaws.com/<repo>`` (or
    ``<registry>/<repo>`` when the host is overridden), repository created if missing."""
    name = repository or repository_name(image)
    uri = ensure_repository(clients, name, {TAG_PROJECT: project})
    host, auth = authorization(clients)
    if registry:
        return RegistryTarget(repository=f"{registry}/{name}", auth=auth)
    return RegistryTarget(repository=uri if "/" in uri else f"{host}/{name}", auth=auth)


def pushed_image(clients: AwsClients, image: str, *, repository: str | None,
                 registry: str | None, project: str,
                 progress: ProgressSink = null_progress, builder: Any = None) -> str:
    """``image`` as a reference SageMaker can pull: as it is when it already names ECR (or the
    overriding registry), else pushed now with the local engine and returned as ``repo@digest``."""
    if is_ecr(image, [registry] if registry else []):
        return image
    if builder is None:
        from mldock.local.build import DockerBuilder

        builder = DockerBuilder()
    if not builder.exists(image):
        if image_host(image) is not None:
            raise MldockError(f"SageMaker cannot pull {image}: it is not in Amazon ECR, and"
                              " not on this machine to push it there",
                              hint="run 'mldock build' and 'mldock --env aws push', or set"
                                   " [deploy.sagemaker] ecr_registry", exit_code=2)
        raise MldockError(f"image {image} is neither in ECR nor on this machine",
                          hint="run 'mldock build' and 'mldock --env aws push'", exit_code=4)
    target = registry_target(clients, image, repository=repository, registry=registry,
                             project=project)
    progress(f"pushing {image} to {target.repository}")
    result = builder.push(image, target.repository, auth=target.auth, progress=progress)
    return f"{target.repository}@{result.digest}"
