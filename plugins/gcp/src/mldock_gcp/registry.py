"""Artifact Registry specifics only: the Docker repository an image goes to (created if missing)
and an access token fetched now.

The deployer's :meth:`~mldock_gcp.deployer.VertexDeployer.registry_target` answers with them;
core pushes with its configured builder for every remote use of the image (``mldock --env gcp
push``, ``train``, ``deploy``, ``batch``: :mod:`mldock.publish`) and hands Vertex
``repo@sha256:…``, which core also records as the run's image digest. This plugin never pushes
and never talks to a Docker engine.

Artifact Registry takes the user ``oauth2accesstoken`` with an OAuth access token as password;
tokens last about an hour, so one is fetched per push and never stored.
"""

from __future__ import annotations

import time
from typing import Any

from mldock.errors import MldockError, NotFoundError
from mldock.interfaces import RegistryTarget

from mldock_gcp.clients import VertexClients
from mldock_gcp.names import image_name, is_pullable, labels

USERNAME = "oauth2accesstoken"
OPERATION_WAIT_S = 120.0


def registry_host(options: Any) -> str:
    """``<location>-docker.pkg.dev``, or ``registry_host`` when set (a local registry, a mirror)."""
    return options.registry_host or f"{options.artifact_registry_location}-docker.pkg.dev"


def repository_path(clients: VertexClients) -> str:
    location = clients.options.artifact_registry_location
    return (f"projects/{clients.project}/locations/{location}/repositories/"
            f"{clients.options.repository}")


def ensure_repository(clients: VertexClients, *, project: str, poll_s: float = 1.0) -> str:
    """Create the Docker repository of ``[deploy.vertex] repository`` if missing; its path."""
    path = repository_path(clients)
    name = clients.options.repository
    try:
        clients.call("GET", "artifactregistry", f"/v1/{path}",
                     action=f"look up the Artifact Registry repository {name!r}",
                     resource=f"Artifact Registry repository {name!r}")
        return path
    except NotFoundError:
        pass
    parent, _, _ = path.rpartition("/repositories/")
    body = {"format": "DOCKER",
            "description": f"Images pushed by mldock for project {project}",
            "labels": labels(clients.options.labels, project=project, role="registry")}
    try:
        operation = clients.call(
            "POST", "artifactregistry", f"/v1/{parent}/repositories",
            params={"repositoryId": name}, json=body,
            action=f"create the Artifact Registry repository {name!r}",
            resource=f"location {clients.options.artifact_registry_location}")
    except MldockError as exc:
        if _already_exists(exc):  # created by someone else meanwhile
            return path
        raise
    _wait(clients, operation, what=f"create the Artifact Registry repository {name!r}",
          poll_s=poll_s)
    return path


def _already_exists(exc: MldockError) -> bool:
    from google.api_core.exceptions import Conflict

    return isinstance(exc.__cause__, Conflict)  # AlreadyExists is a Conflict (HTTP 409)


def _wait(clients: VertexClients, operation: dict[str, Any], *, what: str,
          poll_s: float) -> None:
    """Follow a long-running operation to its end; its error as a one-line MldockError."""
    deadline = time.monotonic() + OPERATION_WAIT_S
    while not operation.get("done"):
        if time.monotonic() > deadline:
            raise MldockError(f"cannot {what}: the operation {operation.get('name')} did not"
                              f" finish within {OPERATION_WAIT_S:.0f} s",
                              hint="look at it in the console, then retry")
        time.sleep(poll_s)
        operation = clients.call("GET", "artifactregistry", f"/v1/{operation['name']}",
                                 action=what)
    error = operation.get("error")
    if error:
        raise MldockError(f"cannot {what}: {error.get('message') or error}",
                          hint="check the Artifact Registry API is enabled and the role"
                               " roles/artifactregistry.admin (or repoAdmin)")


def registry_target(clients: VertexClients, image: str, *, project: str,
                    poll_s: float = 1.0) -> RegistryTarget:
    """Where ``image`` goes, ``<location>-docker.pkg.dev/<project>/<repository>/<image>``, with
    ``{"username": "oauth2accesstoken", "password": <a token fetched now>}``."""
    ensure_repository(clients, project=project, poll_s=poll_s)
    options = clients.options
    repository = (f"{registry_host(options)}/{clients.project}/{options.repository}/"
                  f"{image_name(image)}")
    return RegistryTarget(repository=repository,
                          auth={"username": USERNAME, "password": clients.chain.access_token()})


def require_pullable(image: str, options: Any) -> str:
    """``image`` unchanged if Vertex can pull it, else a one-line error: core pushes before
    calling the deployer, so this means a direct caller passed a local tag."""
    extra = (options.registry_host,) if options.registry_host else ()
    if is_pullable(image, extra):
        return image
    raise MldockError(f"Vertex AI cannot pull {image}: it is not in Artifact Registry",
                      hint="let mldock push it: 'mldock --env ENV deploy' (or train, batch) pushes"
                           " the image first; 'mldock --env ENV push' pushes it alone",
                      exit_code=2)
