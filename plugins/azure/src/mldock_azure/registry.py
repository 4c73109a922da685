"""ACR specifics only: where an image goes, and credentials obtained just before the push.

The deployer's :meth:`~mldock_azure.deployer.AzureMLDeployer.registry_target` answers with them;
core pushes with its builder (every line of the push stream checked, the registry's digest
returned into the run's lineage: :mod:`mldock.publish`) and hands Azure ML ``repo@sha256:…``.
This plugin never pushes and never talks to a Docker engine.

Credentials, in the order Azure recommends:

* the Entra ID → ACR exchange (what ``az acr login`` does): an access token for Resource Manager
  is traded at ``POST https://<registry>/oauth2/exchange`` for an ACR refresh token, which the
  engine presents as the password of the null-GUID user. The refresh token lives ~3 hours and is
  fetched per push, never stored or printed.
* the registry's admin user, when ``registry_admin_user`` is configured (its password read from
  the variable ``registry_admin_password`` names).
"""

from __future__ import annotations

import base64
import json

from mldock.errors import MldockError
from mldock.interfaces import RegistryTarget

from mldock_azure.config import AzureMLOptions
from mldock_azure.errors import CREDENTIALS_HINT, REGISTRY_ROLE, translated
from mldock_azure.names import ACR_USER, is_acr, repository_name
from mldock_azure.workspace import AzureMLClients


def login_server(clients: AzureMLClients) -> str:
    """``<registry>.azurecr.io``: the configured registry, else the workspace's own."""
    return clients.registry_login_server()


def push_host(clients: AzureMLClients) -> str:
    """Where the engine pushes: ``registry_host`` when set (tests, mirrors), else the login
    server."""
    return clients.options.registry_host or login_server(clients)


def tenant_of(token: str) -> str | None:
    """The tenant (``tid`` claim) of an Entra ID access token, read without verifying it (only
    to tell ACR which tenant to check the token against); None when it is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    tenant = payload.get("tid") if isinstance(payload, dict) else None
    return str(tenant) if tenant else None


def exchange(clients: AzureMLClients, server: str) -> str:
    """An ACR refresh token for ``server``, traded for the caller's Resource Manager token."""
    access = clients.identity.access_token(clients.arm_scope)
    form = {"grant_type": "access_token", "service": server, "access_token": access}
    tenant = tenant_of(access)
    if tenant:
        form["tenant"] = tenant
    url = f"https://{server}"
    with translated(f"log in to the container registry {server}", endpoint=url,
                    role=REGISTRY_ROLE):
        status, body = clients.post_form(f"{url}/oauth2/exchange", form)
    token = _refresh_token(body) if status == 200 else None
    if token:
        return token
    if status in (401, 403):
        raise MldockError(f"the container registry {server} refused your Entra ID token"
                          f" (HTTP {status})",
                          hint=f"assign the role '{REGISTRY_ROLE}' on the registry to the"
                               " identity mldock runs as, or use the admin user"
                               " ([deploy.azureml] registry_admin_user); " + CREDENTIALS_HINT)
    if status == 404:
        raise MldockError(f"{url} offers no ACR token exchange (HTTP 404)",
                          hint="check [deploy.azureml] registry: it names an Azure Container"
                               " Registry")
    raise MldockError(f"the ACR token exchange at {url} failed (HTTP {status}"
                      f"{': ' + _error_text(body) if _error_text(body) else ''})",
                      hint="retry; if it persists, log in with 'az acr login' to see why")


def _refresh_token(body: bytes) -> str | None:
    try:
        found = json.loads(body).get("refresh_token")
    except (ValueError, AttributeError):
        return None
    return str(found) if found else None


def _error_text(body: bytes) -> str:
    """The first error ACR describes (``{"errors": [{"message"}]}``), never the whole body."""
    try:
        data = json.loads(body)
        errors = data.get("errors") or [data.get("error") or {}]
        return str(errors[0].get("message") or errors[0].get("code") or "")[:200]
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""


def authorization(clients: AzureMLClients) -> dict[str, str]:
    """``{"username", "password"}`` for the push: the admin user when configured, else the
    exchanged refresh token."""
    options: AzureMLOptions = clients.options
    if options.registry_admin_user and options.registry_admin_password:
        password = options.registry_admin_password.value() or ""
        return {"username": options.registry_admin_user, "password": password}
    return {"username": ACR_USER, "password": exchange(clients, login_server(clients))}


def registry_target(clients: AzureMLClients, image: str) -> RegistryTarget:
    """Where ``image`` goes (``<registry>.azurecr.io/<repository>``) with fresh credentials.

    ACR creates a repository on its first push, so nothing is created beforehand.
    """
    return RegistryTarget(repository=f"{push_host(clients)}/{repository_name(image)}",
                          auth=authorization(clients))


def require_pullable(image: str, options: AzureMLOptions) -> str:
    """``image`` unchanged if Azure ML can pull it (ACR, or the ``registry_host`` override),
    else a one-line error: core pushes before calling the deployer, so this means a direct
    caller passed a local tag."""
    if is_acr(image, [options.registry_host] if options.registry_host else []):
        return image
    raise MldockError(f"Azure ML cannot pull {image}: it is not in an Azure Container Registry",
                      hint="let mldock push it: 'mldock --env ENV train' (or deploy, batch)"
                           " pushes the image first; 'mldock --env ENV push' pushes it alone",
                      exit_code=2)
