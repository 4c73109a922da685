"""Azure's exceptions turned into mldock's one-line errors: what failed, and what to do.

Every Azure request the package makes (Blob Storage, Resource Manager, Azure ML, the identity
chain) runs inside :func:`translated`, so a user never sees an azure-core traceback. Absent or
refused credentials, a missing role (named: "Storage Blob Data Contributor", "AzureML Data
Scientist", "AcrPush"), a workspace, compute, container or blob that does not exist, an exhausted
quota and an unreachable endpoint each become one :class:`~mldock.errors.MldockError` with a hint.

Azure reports errors in three shapes, all read by :func:`error_code` / :func:`service_message`:
Blob Storage's ``x-ms-error-code`` header and XML body (azure-storage-blob copies the code onto
``exc.error_code``), Resource Manager's and Azure ML's JSON ``{"error": {"code", "message"}}``
(azure-core parses it into ``exc.error``), and azure-ai-ml's own client-side exceptions.
The Azure libraries are imported only when an error has to be described.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

from mldock.errors import BackendUnavailableError, MldockError, NotFoundError, UsageError

CREDENTIALS_HINT = ("log in with 'az login', use a managed identity, or set AZURE_TENANT_ID,"
                    " AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a service principal)")
STORAGE_CREDENTIALS_HINT = (CREDENTIALS_HINT + "; or name a variable holding a connection string:"
                            ' [storage.azblob] connection_string = "env:NAME"')
STORAGE_ROLE = "Storage Blob Data Contributor"
WORKSPACE_ROLE = "AzureML Data Scientist"
REGISTRY_ROLE = "AcrPush"
ROLE_OF_PROVIDER = {
    "microsoft.machinelearningservices": WORKSPACE_ROLE,
    "microsoft.containerregistry": REGISTRY_ROLE,
    "microsoft.storage": STORAGE_ROLE,
}
STORAGE_DENIED = {"AuthorizationPermissionMismatch", "AuthorizationFailure",
                  "AuthorizationSourceIPMismatch", "AuthorizationProtocolMismatch",
                  "AuthorizationResourceTypeMismatch", "AuthorizationServiceMismatch",
                  "KeyBasedAuthenticationNotPermitted", "InsufficientAccountPermissions"}
ARM_DENIED = {"AuthorizationFailed", "LinkedAuthorizationFailed", "Forbidden",
              "RoleAssignmentNotFound"}
REJECTED = {"AuthenticationFailed", "InvalidAuthenticationInfo", "InvalidAuthenticationToken",
            "ExpiredAuthenticationToken", "InvalidAuthenticationTokenTenant",
            "AuthenticationFailedInvalidHeader", "AuthenticationFailedMissingToken"}
QUOTA = {"QuotaExceeded", "InsufficientQuota", "OutOfQuota", "ResourceQuotaExceeded",
         "OperationNotAllowed", "SkuNotAvailable", "NotEnoughCores", "TooManyRequestsQuota"}
BUSY = {"ServerBusy", "InternalError", "OperationTimedOut", "TooManyRequests",
        "ServiceUnavailable", "InternalServerError", "GatewayTimeout"}
TENANT_HINT = ("the token belongs to another tenant or has expired: 'az login --tenant <tenant of"
               " the subscription>' (or set AZURE_TENANT_ID)")
NOT_FOUND_HINTS = {
    "container": "create it ('az storage container create -n NAME --account-name ACCOUNT') or"
                 " fix [storage] uri",
    "blob": "check the path; list it with 'az storage blob list'",
    "workspace": "check [deploy.azureml] workspace, resource_group and subscription_id"
                 " ('az ml workspace list')",
    "compute": "check [deploy.azureml] compute ('az ml compute list'), or leave it unset for"
               " serverless compute",
    "resource group": "check [deploy.azureml] resource_group ('az group list')",
    "subscription": "check [deploy.azureml] subscription_id ('az account list') and that you"
                    " are logged in to its tenant",
}


# --- reading Azure's error shapes ---------------------------------------------------------------
def _body(exc: BaseException) -> dict[str, Any]:
    """The ``error`` object of a JSON error body, when the response has one."""
    response = getattr(exc, "response", None)
    if response is None:
        return {}
    try:
        text = response.text()
        body = json.loads(text) if text and text.lstrip().startswith("{") else {}
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError):
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def error_code(exc: BaseException) -> str:
    """The service's error code (``ContainerNotFound``, ``AuthorizationFailed``, …) or ``""``."""
    code = getattr(exc, "error_code", None)  # Blob Storage (x-ms-error-code), copied by the SDK
    if code:
        return str(getattr(code, "value", code))
    odata = getattr(exc, "error", None)  # Resource Manager / Azure ML JSON, parsed by azure-core
    if odata is not None and getattr(odata, "code", None):
        return str(odata.code)
    response = getattr(exc, "response", None)
    header = getattr(response, "headers", {}).get("x-ms-error-code") if response else None
    return str(header or _body(exc).get("code") or "")


def status_code(exc: BaseException) -> int | None:
    """The HTTP status of the failed response, if there was one."""
    status = getattr(exc, "status_code", None) or getattr(
        getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def service_message(exc: BaseException, limit: int = 300) -> str:
    """The service's own explanation, on one line, without request ids or error-code echoes."""
    odata = getattr(exc, "error", None)
    text = str(getattr(odata, "message", "") or "") if odata is not None else ""
    if not text:
        text = str(_body(exc).get("message") or "")
    if not text:
        message = getattr(exc, "message", None)
        text = str(message if message else exc)
    # azure-ai-ml colours its validation messages (ANSI codes, a blank first line)
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    text = re.sub(r"^\((\w+)\)\s*", "", text.strip())  # azure-core's "(Code) message"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if first.startswith("Operation returned an invalid status"):
        first = ""
    return first[:limit].rstrip(".")


def is_missing(exc: BaseException) -> bool:
    """Whether ``exc`` says a blob is absent (and not its container)."""
    from azure.core.exceptions import HttpResponseError

    if not isinstance(exc, HttpResponseError):
        return False
    code = error_code(exc)
    return code != "ContainerNotFound" and (code in ("BlobNotFound", "ResourceNotFound")
                                            or (not code and status_code(exc) == 404))


def _kind_missing(code: str, message: str) -> str | None:
    """Which kind of thing a not-found error is about: container, blob, workspace, …"""
    lowered = message.lower()
    if code == "ContainerNotFound":
        return "container"
    if code == "BlobNotFound":
        return "blob"
    if code == "ResourceGroupNotFound":
        return "resource group"
    if code in ("SubscriptionNotFound", "InvalidSubscriptionId"):
        return "subscription"
    if code == "WorkspaceNotFound" or ("/workspaces/" in lowered and "/computes/" not in lowered):
        return "workspace"
    if "/computes/" in lowered or "compute" in lowered:
        return "compute"
    return None


# --- the translation ---------------------------------------------------------------------------
def describe(exc: BaseException, *, action: str, resource: str | None = None,
             role: str | None = None, endpoint: str | None = None) -> MldockError:
    """The MldockError for ``exc``, raised while trying to ``action`` (reads after "cannot").

    ``resource`` names what was acted on (``az://models/iris``, ``workspace 'ws'``); ``role`` is
    the Azure role that would allow it (read from the error when not given); ``endpoint`` is the
    URL the client talks to, shown when it cannot be reached.
    """
    if isinstance(exc, MldockError):
        return exc
    from azure.core import exceptions as core
    from azure.identity import AuthenticationRequiredError, CredentialUnavailableError

    where = f" {resource}" if resource else ""
    if isinstance(exc, CredentialUnavailableError):
        return MldockError(f"cannot {action}: no Azure credentials found",
                           hint=STORAGE_CREDENTIALS_HINT if role == STORAGE_ROLE
                           else CREDENTIALS_HINT)
    if isinstance(exc, AuthenticationRequiredError):
        return MldockError(f"cannot {action}: the Azure login needs to be renewed",
                           hint=CREDENTIALS_HINT)
    if isinstance(exc, core.ServiceRequestError | core.ServiceResponseError):
        return _unreachable(exc, action=action, where=where, endpoint=endpoint)
    if isinstance(exc, core.HttpResponseError):
        return _http_error(exc, action=action, resource=resource, role=role)
    if isinstance(exc, core.AzureError) and type(exc).__module__.startswith("azure.ai.ml"):
        return _ml_error(exc, action=action)
    if isinstance(exc, core.AzureError):
        return MldockError(f"cannot {action}{_on(where)}: {service_message(exc)}")
    if isinstance(exc, OSError):
        return MldockError(f"cannot {action}: {exc.strerror or exc}"
                           f"{f' ({exc.filename})' if exc.filename else ''}",
                           hint="check the local folder's permissions and free disk space")
    return MldockError(f"cannot {action}{_on(where)}: {type(exc).__name__}: {exc}")


def _on(where: str) -> str:
    return f" on{where}" if where else ""


def _unreachable(exc: BaseException, *, action: str, where: str,
                 endpoint: str | None) -> MldockError:
    text = str(exc)
    if re.search(r"Name or service not known|nodename nor servname|getaddrinfo failed|"
                 r"Temporary failure in name resolution|No address associated", text):
        reason = "the host name does not resolve"
    elif "refused" in text.lower():
        reason = "connection refused"
    elif "timed out" in text.lower() or "timeout" in type(exc).__name__.lower():
        reason = "timed out"
    elif "certificate" in text.lower() or "ssl" in text.lower():
        reason = "TLS failed: certificate not trusted"
    else:
        reason = type(exc).__name__
    target = endpoint or "the Azure endpoint"
    return BackendUnavailableError(
        f"cannot {action}{_on(where)}: {target} is not reachable ({reason})",
        hint="check [storage.azblob] account / account_url (or the cloud in [deploy.azureml]),"
             " the network and the proxy settings")


def _http_error(exc: Any, *, action: str, resource: str | None, role: str | None
                ) -> MldockError:
    from azure.core import exceptions as core

    code, status, message = error_code(exc), status_code(exc), service_message(exc)
    detail = f": {message}" if message else ""
    named = f" ({code})" if code else ""
    where = f" {resource}" if resource else ""
    if code in REJECTED or isinstance(exc, core.ClientAuthenticationError) or status == 401:
        hint = TENANT_HINT if "Tenant" in code or "Expired" in code else (
            "the account key, SAS or token is wrong or expired; " + STORAGE_CREDENTIALS_HINT
            if code in ("AuthenticationFailed", "InvalidAuthenticationInfo") else CREDENTIALS_HINT)
        return MldockError(f"cannot {action}{_on(where)}: Azure refused the credentials{named}",
                           hint=hint)
    if code in STORAGE_DENIED or code in ARM_DENIED or status == 403:
        return _denied(code, service_message(exc, limit=2000), action=action, where=where,
                       role=role)
    if _is_quota(code, message):
        return MldockError(f"cannot {action}{_on(where)}: an Azure quota is exhausted{detail}",
                           hint="request more quota for the VM family (portal: Quotas), choose"
                                " another instance type in [deploy.azureml], or stop unused jobs"
                                " and endpoints")
    if isinstance(exc, core.ResourceNotFoundError) or status == 404:
        kind = _kind_missing(code, message)
        what = resource or (f"the {kind}" if kind else "the resource")
        if kind == "container" and resource:
            what = f"the container of {resource}"
        return NotFoundError(f"cannot {action}: {what} does not exist{named}",
                             hint=NOT_FOUND_HINTS.get(kind or "", "check the name in mldock.toml"))
    if code in BUSY or (status is not None and (status >= 500 or status == 429)):
        return BackendUnavailableError(f"cannot {action}{_on(where)}: Azure answered"
                                       f" {code or status}{detail}",
                                       hint="retry later; the service is busy or failing")
    if status == 400 and code in ("InvalidResourceName", "InvalidUri", "OutOfRangeInput"):
        return UsageError(f"cannot {action}{_on(where)}: invalid name{named}{detail}")
    return MldockError(f"cannot {action}{_on(where)}: {code or status or 'failed'}{detail}")


def _is_quota(code: str, message: str) -> bool:
    """Quota errors come with many codes (ARM's ``QuotaExceeded``, Azure ML's ``UserError``
    saying "…exceeds quota…", endpoints' ``OutOfQuota``); the message settles the vague ones."""
    mentions = "quota" in message.lower()
    return (code in QUOTA and (code != "OperationNotAllowed" or mentions)) or (
        mentions and code not in ("", "NotFound", "ResourceNotFound"))


def _denied(code: str, message: str, *, action: str, where: str, role: str | None
            ) -> MldockError:
    """Access refused: name the role to assign, and the scope when Azure says it."""
    performed = re.search(r"perform action '([^']+)'", message)
    scope = re.search(r"over scope '([^']+)'", message)
    if role is None and performed:
        provider = performed.group(1).split("/", 1)[0].lower()
        role = ROLE_OF_PROVIDER.get(provider, "Contributor")
    if role is None:
        role = STORAGE_ROLE if code in STORAGE_DENIED else "Contributor"
    on = f" on {scope.group(1)}" if scope else ""
    if code in ("AuthorizationSourceIPMismatch", "AuthorizationFailure") and role == STORAGE_ROLE:
        extra = "; or the account's firewall blocks this network (allow it under Networking)"
    elif code == "KeyBasedAuthenticationNotPermitted":
        extra = "; the account refuses keys and SAS: drop connection_string and use Entra ID"
    else:
        extra = ""
    what = f" ({performed.group(1)})" if performed else f" ({code})" if code else ""
    return MldockError(f"access denied: cannot {action}{_on(where)}{what}",
                       hint=f"assign the role '{role}'{on} to the identity mldock runs as"
                            f" (az role assignment create --role \"{role}\" …){extra}")


def _ml_error(exc: Any, *, action: str) -> MldockError:
    """azure-ai-ml's client-side exceptions (validation, local endpoints, assets)."""
    message = service_message(exc)
    category = str(getattr(exc, "error_category", "") or "")
    if type(exc).__name__ in ("ValidationException", "UserErrorException") or category in (
            "UserError", "ErrorCategory.USER_ERROR"):
        return UsageError(f"cannot {action}: {message}",
                          hint="check [deploy.azureml] in mldock.toml")
    return MldockError(f"cannot {action}: {message}")


def is_azure_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from an Azure library (and so has a description)."""
    return type(exc).__module__.startswith(("azure.", "msal"))


@contextlib.contextmanager
def translated(action: str, *, resource: str | None = None, role: str | None = None,
               endpoint: str | None = None) -> Iterator[None]:
    """Run a block of Azure calls; any Azure or file-system failure leaves it as one
    :class:`MldockError` (see :func:`describe` for the arguments). Other exceptions, bugs
    included, pass through untouched."""
    try:
        yield
    except MldockError:
        raise
    except Exception as exc:
        if is_azure_error(exc) or isinstance(exc, OSError):
            raise describe(exc, action=action, resource=resource, role=role,
                           endpoint=endpoint) from exc
        raise
