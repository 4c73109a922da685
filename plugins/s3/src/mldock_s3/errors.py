"""botocore's exceptions turned into mldock's one-line errors: what failed, where, and what to do.

Every request the store makes goes through :func:`translated`, so a user never sees a botocore
traceback: a missing bucket, refused access, absent credentials or an unreachable endpoint each
become one :class:`~mldock.errors.MldockError` naming the bucket (and key) with a hint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from botocore import exceptions as bce
from mldock.errors import BackendUnavailableError, MldockError, NotFoundError, UsageError

CREDENTIALS_HINT = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pick a profile"
                    " (AWS_PROFILE or [storage.s3] profile) or log in with 'aws sso login'")
ACCESS_CODES = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "AccountProblem",
                "InvalidObjectState"}
REJECTED_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
                  "TokenRefreshRequired", "InvalidSecurity", "InvalidClientTokenId"}
REGION_CODES = {"PermanentRedirect", "AuthorizationHeaderMalformed", "301",
                "IllegalLocationConstraintException", "IncorrectEndpoint"}
BUSY_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "503", "500", "RequestTimeout"}
UNREACHABLE = (bce.EndpointConnectionError, bce.ConnectTimeoutError, bce.ReadTimeoutError,
               bce.ConnectionClosedError, bce.ProxyConnectionError, bce.SSLError,
               bce.HTTPClientError)


def _unwrap(exc: BaseException) -> BaseException:
    """s3transfer wraps the error that stopped a download in RetriesExceededError."""
    inner = getattr(exc, "last_exception", None)
    return inner if isinstance(inner, BaseException) else exc


def describe(exc: BaseException, *, action: str, bucket: str, key: str | None = None,
             endpoint: str | None = None) -> MldockError:
    """The MldockError for ``exc`` raised while doing ``action`` on ``s3://bucket/key``.

    ``action`` reads after "cannot", e.g. ``"store 'runs/1/model'"``. ``endpoint`` is the URL
    the client talks to (shown for unreachable endpoints and missing buckets).
    """
    exc = _unwrap(exc)
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    at = f" at {endpoint}" if endpoint else ""
    if isinstance(exc, MldockError):
        return exc
    if isinstance(exc, bce.NoCredentialsError):
        return MldockError(f"cannot {action}: no AWS credentials found for {where}",
                           hint=CREDENTIALS_HINT)
    if isinstance(exc, bce.PartialCredentialsError):
        return MldockError(f"cannot {action}: the AWS credentials for {where} are incomplete"
                           f" ({exc.kwargs.get('cred_var', 'a value')} is missing)",
                           hint=CREDENTIALS_HINT)
    sso_errors = (bce.TokenRetrievalError, bce.SSOTokenLoadError, bce.UnauthorizedSSOTokenError)
    if isinstance(exc, sso_errors):
        return MldockError(f"cannot {action}: the AWS SSO session for {where} has expired",
                           hint="log in again with 'aws sso login'")
    if isinstance(exc, bce.ProfileNotFound):
        return MldockError(f"cannot {action}: AWS profile {exc.kwargs.get('profile')!r} is not"
                           " defined", hint="fix [storage.s3] profile or AWS_PROFILE, or add the"
                           " profile to ~/.aws/config")
    if isinstance(exc, UNREACHABLE):
        reason = type(exc).__name__
        if isinstance(exc, bce.EndpointConnectionError):
            reason = "connection refused or no route"
        target = endpoint or "the S3 endpoint"
        return BackendUnavailableError(
            f"cannot {action}: {target} is not reachable ({reason}) for {where}",
            hint="check [storage.s3] endpoint_url or AWS_ENDPOINT_URL and that the store is"
                 " running; for AWS check the network and proxy settings")
    if isinstance(exc, bce.ClientError):
        return _client_error(exc, action=action, bucket=bucket, where=where, at=at)
    if isinstance(exc, bce.ParamValidationError):
        return UsageError(f"cannot {action}: invalid request for {where}: {exc}")
    if isinstance(exc, bce.BotoCoreError):
        return MldockError(f"cannot {action} at {where}: {exc}")
    if isinstance(exc, OSError):
        return MldockError(f"cannot {action}: {exc.strerror or exc} ({exc.filename or where})",
                           hint="check the local folder's permissions and free disk space")
    return MldockError(f"cannot {action} at {where}: {type(exc).__name__}: {exc}")


def _client_error(exc: bce.ClientError, *, action: str, bucket: str, where: str,
                  at: str) -> MldockError:
    error = exc.response.get("Error", {}) or {}
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or "").strip().rstrip(".")
    status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    operation = getattr(exc, "operation_name", "") or ""
    if code == "NoSuchBucket" or (operation == "HeadBucket" and code in ("404", "NotFound")):
        return NotFoundError(f"bucket {bucket!r} does not exist{at} (needed to {action})",
                             hint=f"create it (aws s3 mb s3://{bucket}) or fix [storage] uri")
    if code in ("NoSuchKey", "404", "NotFound") or status == 404:
        return NotFoundError(f"cannot {action}: {where} does not exist",
                             hint="check the key or prefix; list it with 'aws s3 ls'")
    if code in REJECTED_CODES:
        return MldockError(f"cannot {action}: the store rejected the credentials for {where}"
                           f" ({code})", hint="the access key is unknown to this endpoint or the"
                           " secret/session token is wrong or expired; " + CREDENTIALS_HINT)
    if code in ACCESS_CODES or status == 403:
        return MldockError(f"access denied: cannot {action} at {where}",
                           hint="the credentials in use lack permission: allow s3:GetObject,"
                                " s3:PutObject, s3:ListBucket and s3:DeleteObject on the bucket"
                                " and prefix, or use another profile")
    if code in REGION_CODES:
        region = (exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
                  .get("x-amz-bucket-region"))
        where_it_is = f" (it is in {region})" if region else ""
        return MldockError(f"cannot {action}: bucket {bucket!r} is in another region{where_it_is}",
                           hint="set [storage.s3] region or AWS_REGION to the bucket's region")
    if code == "InvalidBucketName":
        return UsageError(f"cannot {action}: {bucket!r} is not a valid bucket name",
                          hint="fix [storage] uri")
    if code in BUSY_CODES or (isinstance(status, int) and status >= 500):
        return BackendUnavailableError(f"cannot {action} at {where}: the store answered {code}"
                                       f"{': ' + message if message else ''}",
                                       hint="retry later; the store is busy or failing")
    return MldockError(f"cannot {action} at {where}: {code or status}"
                       f"{': ' + message if message else ''}")


def is_missing(exc: BaseException) -> bool:
    """Whether ``exc`` says an object is absent (and not its bucket)."""
    exc = _unwrap(exc)
    if not isinstance(exc, bce.ClientError):
        return False
    code = str(exc.response.get("Error", {}).get("Code") or "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code != "NoSuchBucket" and (code in ("NoSuchKey", "404", "NotFound") or status == 404)


@contextlib.contextmanager
def translated(action: str, *, bucket: str, key: str | None = None,
               endpoint: str | None = None) -> Iterator[None]:
    """Re-raise anything botocore, s3transfer or the file system raise as an MldockError."""
    try:
        yield
    except MldockError:
        raise
    except (bce.BotoCoreError, bce.ClientError, OSError) as exc:
        raise describe(exc, action=action, bucket=bucket, key=key, endpoint=endpoint) from exc
    except Exception as exc:  # s3transfer's RetriesExceededError and friends
        if type(exc).__module__.startswith(("s3transfer", "boto3")):
            raise describe(exc, action=action, bucket=bucket, key=key,
                           endpoint=endpoint) from exc
        raise
