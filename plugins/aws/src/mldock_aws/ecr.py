"""ECR specifics only: the repository an image goes to (created if missing) and a fresh token.

The deployer's :meth:`~mldock_aws.deployer.SageMakerDeployer.registry_target` answers with them;
core pushes with its configured builder for every remote use of the image (``mldock --env aws
push``, ``train``, ``deploy``, ``batch``: :mod:`mldock.publish`) and hands SageMaker
``repo@sha256:…``. This plugin never pushes and never talks to a Docker engine.
"""

from __future__ import annotations

import base64

from mldock.errors import MldockError
from mldock.interfaces import RegistryTarget

from mldock_aws.clients import AwsClients
from mldock_aws.errors import translated
from mldock_aws.names import TAG_PROJECT, is_ecr, repository_name


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


def require_pullable(image: str, registry: str | None) -> str:
    """``image`` unchanged if SageMaker can pull it (ECR, or the ``ecr_registry`` override), else
    a one-line error: core pushes before calling the deployer, so this means a direct caller
    passed a local tag."""
    if is_ecr(image, [registry] if registry else []):
        return image
    raise MldockError(f"SageMaker cannot pull {image}: it is not in Amazon ECR",
                      hint="let mldock push it: 'mldock --env ENV deploy' (or train, batch) pushes"
                           " the image first; 'mldock --env ENV push' pushes it alone",
                      exit_code=2)
