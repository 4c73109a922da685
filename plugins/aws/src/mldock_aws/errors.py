"""botocore's exceptions turned into mldock's one-line errors: what failed, and what to do.

Every AWS request the deployer makes runs inside :func:`translated`, so a user never sees a
botocore traceback: absent credentials, a missing region, an unreachable endpoint, refused access,
an unknown job or endpoint, an exhausted quota each become one :class:`~mldock.errors.MldockError`.
botocore itself is imported only when an error has to be described.
"""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from mldock.errors import BackendUnavailableError, MldockError, NotFoundError, UsageError

if TYPE_CHECKING:  # botocore is imported where an error is translated, not at start-up
    from botocore.exceptions import ClientError

CREDENTIALS_HINT = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, choose a profile (AWS_PROFILE"
                    " or [deploy.sagemaker] profile) or log in with 'aws sso login'")
REGION_HINT = ("set [deploy.sagemaker] region in mldock.toml (e.g. region = \"eu-west-1\") or"
               " AWS_REGION")
ROLE_HINT = ("check deploy.sagemaker.role_arn in mldock.toml: the role must exist and trust"
             " sagemaker.amazonaws.com, and the caller needs iam:PassRole on it")
REJECTED = {"UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException",
            "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException", "InvalidToken",
            "IncompleteSignature", "InvalidAccessKeyId", "MissingAuthenticationToken"}
DENIED = {"AccessDenied", "AccessDeniedException", "NotAuthorized", "UnauthorizedOperation",
          "Forbidden", "403"}
MISSING = {"ResourceNotFound", "ResourceNotFoundException", "RepositoryNotFoundException",
           "NoSuchEntity", "NoSuchKey", "NoSuchBucket", "404", "NotFound"}
BUSY = {"ThrottlingException", "Throttling", "ServiceUnavailable", "InternalFailure",
        "InternalServerError", "InternalError", "500", "502", "503", "504"}


def _code_and_message(error: dict) -> tuple[str, str]:
    """The error's code and message. A JSON-protocol service (SageMaker, ECR, Logs) behind a
    gateway or an emulator may answer with an XML error document, or an HTML page: the XML's own
    ``<Code>``/``<Message>`` are taken; an HTML page has no message worth showing."""
    code = str(error.get("Code") or "")
    text = str(error.get("Message") or "").strip()
    if text.startswith("<"):
        inner_code = re.search(r"<Code>([^<]+)</Code>", text)
        inner_message = re.search(r"<Message>([^<]*)</Message>", text)
        code = inner_code.group(1).strip() if inner_code else code
        text = html.unescape(inner_message.group(1)) if inner_message else ""
    return code, text.strip().rstrip(".")


def is_not_found(exc: BaseException) -> bool:
    """Whether ``exc`` says the named SageMaker/ECR/Logs resource does not exist.

    SageMaker reports a missing job, model, config or endpoint as a ``ValidationException``
    whose message says "Could not find …"; other services have their own codes.
    """
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    code, message = _code_and_message(exc.response.get("Error", {}) or {})
    message = message.lower()
    return code in MISSING or (code in ("ValidationException", "ValidationError")
                               and ("could not find" in message or "not found" in message
                                    or "does not exist" in message))


def describe(exc: BaseException, *, action: str, resource: str | None = None) -> MldockError:
    """The MldockError for ``exc``, raised while trying to ``action`` (reads after "cannot")."""
    from botocore import exceptions as bce

    if isinstance(exc, MldockError):
        return exc
    if isinstance(exc, bce.NoCredentialsError):
        return MldockError(f"cannot {action}: no AWS credentials found", hint=CREDENTIALS_HINT)
    if isinstance(exc, bce.PartialCredentialsError):
        return MldockError(f"cannot {action}: the AWS credentials are incomplete"
                           f" ({exc.kwargs.get('cred_var', 'a value')} is missing)",
                           hint=CREDENTIALS_HINT)
    if isinstance(exc, bce.NoRegionError):
        return MldockError(f"cannot {action}: no AWS region is set", hint=REGION_HINT,
                           exit_code=2)
    if isinstance(exc, bce.ProfileNotFound):
        return MldockError(f"cannot {action}: AWS profile {exc.kwargs.get('profile')!r} is not"
                           " defined", hint="fix [deploy.sagemaker] profile or AWS_PROFILE, or add"
                           " the profile to ~/.aws/config", exit_code=2)
    if isinstance(exc, (bce.TokenRetrievalError, bce.SSOTokenLoadError,
                        bce.UnauthorizedSSOTokenError)):
        return MldockError(f"cannot {action}: the AWS SSO session has expired",
                           hint="log in again with 'aws sso login'")
    if isinstance(exc, (bce.EndpointConnectionError, bce.ConnectTimeoutError,
                        bce.ReadTimeoutError, bce.ConnectionClosedError,
                        bce.ProxyConnectionError, bce.SSLError, bce.HTTPClientError)):
        where = getattr(exc, "kwargs", {}).get("endpoint_url") or "the AWS endpoint"
        return BackendUnavailableError(
            f"cannot {action}: {where} is not reachable ({type(exc).__name__})",
            hint="check [deploy.sagemaker] endpoint_url / AWS_ENDPOINT_URL, the network and the"
                 " proxy settings")
    if isinstance(exc, bce.ClientError):
        return _client_error(exc, action=action, resource=resource)
    if isinstance(exc, bce.ParamValidationError):
        return UsageError(f"cannot {action}: invalid request: {exc}")
    if isinstance(exc, bce.BotoCoreError):
        return MldockError(f"cannot {action}: {exc}")
    if isinstance(exc, OSError):
        return MldockError(f"cannot {action}: {exc.strerror or exc}"
                           f"{f' ({exc.filename})' if exc.filename else ''}")
    return MldockError(f"cannot {action}: {type(exc).__name__}: {exc}")


def _client_error(exc: ClientError, *, action: str, resource: str | None) -> MldockError:
    code, message = _code_and_message(exc.response.get("Error", {}) or {})
    status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    operation = getattr(exc, "operation_name", "") or "the request"
    detail = f": {message}" if message else ""
    if code in REJECTED:
        return MldockError(f"cannot {action}: AWS rejected the credentials ({code})",
                           hint="the access key is unknown, or the secret or session token is"
                                " wrong or expired; " + CREDENTIALS_HINT)
    if code in DENIED or status == 403:
        return MldockError(f"access denied: cannot {action}{detail}",
                           hint=f"the credentials in use lack permission for {operation}; ask for"
                                " the SageMaker/ECR permissions (e.g. AmazonSageMakerFullAccess)"
                                " or use another profile")
    if is_not_found(exc):
        what = resource or "the resource"
        return NotFoundError(f"cannot {action}: {what} does not exist{detail}",
                             hint="check the name; 'mldock deploy --list' shows endpoints")
    lowered = message.lower()
    if code in ("ValidationException", "ValidationError") and (
            "role" in lowered or "assume" in lowered):
        return MldockError(f"cannot {action}: SageMaker cannot use the execution role{detail}",
                           hint=ROLE_HINT, exit_code=2)
    if code == "ResourceLimitExceeded":
        return MldockError(f"cannot {action}: an AWS quota is exhausted{detail}",
                           hint="request a quota increase in Service Quotas, stop unused jobs"
                                " or endpoints, or choose another instance type")
    if code == "ResourceInUse":
        return MldockError(f"cannot {action}: {resource or 'the resource'} is in use{detail}",
                           hint="wait for the running operation to finish, or pick another name")
    if code in BUSY or (isinstance(status, int) and status >= 500):
        reason = message or f"HTTP {status}: the service failed or does not implement {operation}"
        return BackendUnavailableError(f"cannot {action}: {reason}",
                                       hint="retry later; the service is busy or failing")
    return MldockError(f"cannot {action}: {code or status}{detail}")


def is_aws_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from botocore, boto3 or s3transfer (and so has a description)."""
    return type(exc).__module__.startswith(("botocore", "boto3", "s3transfer"))


@contextlib.contextmanager
def translated(action: str, *, resource: str | None = None) -> Iterator[None]:
    """Re-raise anything botocore or the file system raise as an MldockError."""
    try:
        yield
    except MldockError:
        raise
    except Exception as exc:
        if is_aws_error(exc) or isinstance(exc, OSError):
            raise describe(exc, action=action, resource=resource) from exc
        raise
