"""Google's exceptions turned into mldock's one-line errors: what failed, and what to do.

Every Google request the package makes (storage, Vertex AI, Artifact Registry, logging) runs inside
:func:`translated`, so a user never sees a google-auth or google-api-core traceback. Google says
*why* a call failed in structured error details (``google.rpc.ErrorInfo``: a reason such as
``IAM_PERMISSION_DENIED`` or ``SERVICE_DISABLED`` and metadata naming the permission or the API);
older JSON APIs (Cloud Storage) only say it in prose. Both are read here, so the hint can name the
IAM role to grant or the ``gcloud services enable`` command to run. The Google libraries are
imported only when an error has to be described.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

from mldock.errors import BackendUnavailableError, MldockError, NotFoundError

CREDENTIALS_HINT = ("run 'gcloud auth application-default login', set"
                    " GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or name one"
                    " with credentials_file ="
                    ' "env:VARIABLE" in mldock.toml')
RETRY_HINT = "retry later; Google Cloud is busy or failing (https://status.cloud.google.com)"

#: permission prefix → the predefined role that grants it (first match wins; most specific first)
ROLES: tuple[tuple[str, str], ...] = (
    ("storage.buckets.get", "roles/storage.legacyBucketReader"),
    ("storage.buckets.", "roles/storage.admin"),
    ("storage.", "roles/storage.objectAdmin"),
    ("aiplatform.", "roles/aiplatform.user"),
    ("artifactregistry.repositories.create", "roles/artifactregistry.admin"),
    ("artifactregistry.repositories.downloadArtifacts", "roles/artifactregistry.reader"),
    ("artifactregistry.", "roles/artifactregistry.writer"),
    ("iam.serviceAccounts.actAs", "roles/iam.serviceAccountUser"),
    ("iam.serviceAccounts.getAccessToken", "roles/iam.serviceAccountTokenCreator"),
    ("logging.", "roles/logging.viewer"),
    ("serviceusage.", "roles/serviceusage.serviceUsageConsumer"),
    ("cloudkms.", "roles/cloudkms.cryptoKeyEncrypterDecrypter"),
    ("compute.networks.", "roles/compute.networkUser"),
    ("resourcemanager.projects.get", "roles/browser"),
)
_PERMISSION = r"[a-z]+\.[A-Za-z]+\.[A-Za-z]+"
_PERMISSION_TEXT = (re.compile(rf"[Pp]ermission ['\"]?({_PERMISSION})['\"]? denied"),
                    re.compile(rf"does not have ({_PERMISSION}) access"),
                    re.compile(rf"\b(?:missing|requires?|lacks?) (?:the )?(?:permission )?"
                               rf"['\"]?({_PERMISSION})"))
_ROLE_TEXT = re.compile(r"\b(roles/[A-Za-z.]+[A-Za-z])")
_API_TEXT = re.compile(r"apis/api/([a-z0-9.-]+\.googleapis\.com)")
_PROJECT_TEXT = re.compile(r"\bproject[ =:]['\"]?(?:projects/)?([a-z0-9-]+)", re.IGNORECASE)
_PROJECT_NOT_FOUND = re.compile(r"\b[Pp]roject ['\"]?(?:projects/)?[a-z0-9-]+['\"]?"
                                r" (?:was )?not found")
_URL_PREFIX = re.compile(r"^[A-Z]+ https?://\S+: ")  # api-core prefixes "POST <url>: "


def role_for(permission: str) -> str | None:
    """The predefined IAM role granting ``permission`` (or, given an API, that API's usual role).

    >>> role_for("aiplatform.customJobs.create")
    'roles/aiplatform.user'
    """
    permission = permission.removesuffix(".googleapis.com")
    if "." not in permission:
        permission += "."
    return next((role for prefix, role in ROLES if permission.startswith(prefix)), None)


def describe(exc: BaseException, *, action: str, resource: str | None = None) -> MldockError:
    """The MldockError for ``exc``, raised while trying to ``action`` (reads after "cannot").

    ``resource`` names what was touched (``gs://bucket/key``, a job's name): it appears in the
    message, and a ``gs://`` one lets a missing bucket be told from a missing object.
    """
    if isinstance(exc, MldockError):
        return exc
    from google.api_core import exceptions as gax
    from google.auth import exceptions as gauth

    exc = _as_api_error(exc, gax)
    if isinstance(exc, gauth.GoogleAuthError):
        return _auth_error(exc, action, gauth)
    if isinstance(exc, gax.GoogleAPICallError):
        return _api_error(exc, action, resource, gax)
    if _is_unreachable(exc):
        return _unreachable(exc, action, resource)
    if type(exc).__name__ == "DataCorruption":
        return MldockError(f"cannot {action}: {resource or 'the download'} failed its checksum"
                           " check", hint="retry; if it fails again, the stored copy is damaged")
    if isinstance(exc, OSError):
        where = exc.filename or resource or "a local file"
        return MldockError(f"cannot {action}: {exc.strerror or _first_line(exc)} ({where})",
                           hint="check the path, its permissions and the free disk space")
    return MldockError(f"cannot {action}: {type(exc).__name__}: {_first_line(exc)}")


def _as_api_error(exc: BaseException, gax: Any) -> BaseException:
    """google-cloud-storage's InvalidResponse (resumable and chunked transfers) carries the HTTP
    response; turn it into the api-core error every other call raises."""
    response = getattr(exc, "response", None)
    if (type(exc).__name__ == "InvalidResponse" and response is not None
            and hasattr(response, "json") and hasattr(response, "request")):
        try:
            return gax.from_http_response(response)
        except Exception:  # noqa: BLE001 - a malformed response keeps the original error
            return exc
    return exc


def _auth_error(exc: BaseException, action: str, gauth: Any) -> MldockError:
    if isinstance(exc, gauth.MalformedError):
        return MldockError(f"cannot {action}: the credentials file is not a valid Google"
                           f" credential ({_first_line(exc)})", hint=CREDENTIALS_HINT)
    if isinstance(exc, gauth.DefaultCredentialsError):
        return MldockError(f"cannot {action}: no Google Cloud credentials found",
                           hint=CREDENTIALS_HINT)
    if isinstance(exc, gauth.RefreshError):
        expired = "invalid_grant" in str(exc) or "reauth" in str(exc).lower()
        why = "have expired" if expired else "were refused"
        return MldockError(f"cannot {action}: the Google Cloud credentials {why}"
                           f" ({_first_line(exc)})", hint=CREDENTIALS_HINT)
    if isinstance(exc, gauth.TransportError | gauth.TimeoutError):
        return _unreachable(exc, action, None)
    return MldockError(f"cannot {action}: {_first_line(exc)}", hint=CREDENTIALS_HINT)


def _api_error(exc: Any, action: str, resource: str | None, gax: Any) -> MldockError:
    reason = _reason(exc)
    meta = _metadata(exc)
    if reason in ("SERVICE_DISABLED", "accessNotConfigured") or "has not been used in project" \
            in _message(exc):
        return _service_disabled(exc, action, meta)
    if reason in ("CONSUMER_INVALID", "USER_PROJECT_INVALID") or _project_missing(exc):
        return _project_not_found(exc, action, meta)
    if reason in ("BILLING_DISABLED", "accountDisabled"):
        return MldockError(f"cannot {action}: billing is disabled for the project"
                           f" ({_message(exc)})", hint="enable billing for the project in the"
                           " Cloud console, or use another project")
    if reason in ("userProjectMissing", "USER_PROJECT_DENIED", "required") and \
            "user project" in _message(exc).lower():
        return MldockError(f"cannot {action}: {resource or 'the bucket'} is a requester-pays"
                           " bucket and needs a billing project", hint="set [storage.gcs] project")
    if isinstance(exc, gax.Unauthorized):
        return MldockError(f"cannot {action}: the Google Cloud credentials were refused",
                           hint=CREDENTIALS_HINT)
    if isinstance(exc, gax.Forbidden | gax.PermissionDenied):
        return _denied(exc, action, resource, meta)
    if isinstance(exc, gax.NotFound):
        return _not_found(exc, action, resource)
    if isinstance(exc, gax.TooManyRequests):
        return _quota(exc, action, meta)
    if isinstance(exc, gax.Conflict):
        return MldockError(f"cannot {action}: {resource or 'it'} already exists or was changed"
                           f" meanwhile ({_message(exc)})", hint="retry; someone else changed it")
    if isinstance(exc, gax.ServerError | gax.DeadlineExceeded):
        return BackendUnavailableError(f"cannot {action}: Google Cloud answered {exc.code}"
                                       f" ({_message(exc)})", hint=RETRY_HINT)
    return MldockError(f"cannot {action}: {_message(exc)}")


def _denied(exc: Any, action: str, resource: str | None, meta: Mapping[str, str]) -> MldockError:
    permission = meta.get("permission") or _search(_PERMISSION_TEXT, _texts(exc))
    named_role = _search((_ROLE_TEXT,), _texts(exc))
    role = named_role or (role_for(permission) if permission else None)
    if role is None:
        role = role_for(meta.get("service") or _domain(exc) or _service_of(resource))
    lacking = f" (missing {permission})" if permission else ""
    where = f" on {resource}" if resource else ""
    hint = (f"grant the caller {role}{where} (gcloud projects add-iam-policy-binding or the"
            " resource's IAM page), or use other credentials" if role else
            "the caller lacks an IAM permission; check its roles or use other credentials")
    return MldockError(f"permission denied: cannot {action}{lacking}", hint=hint)


def _not_found(exc: Any, action: str, resource: str | None) -> MldockError:
    bucket = _bucket_of(resource)
    if bucket and (_says_bucket_missing(exc) or resource == f"gs://{bucket}"):
        return NotFoundError(f"bucket {bucket!r} does not exist (needed to {action})",
                             hint=f"create it (gcloud storage buckets create gs://{bucket}) or"
                                  " fix [storage] uri")
    what = resource or "the resource"
    return NotFoundError(f"cannot {action}: {what} does not exist",
                         hint="check the name, the project and the region in mldock.toml")


def _quota(exc: Any, action: str, meta: Mapping[str, str]) -> MldockError:
    metric = meta.get("quota_metric") or meta.get("quota_limit") or ""
    service = meta.get("service") or _domain(exc) or ""
    what = f" {metric}" if metric else ""
    text = _message(exc)
    return MldockError(f"cannot {action}: quota exceeded{what} ({text})",
                       hint="retry later, pick another region or machine type, or request more"
                            f" quota (gcloud alpha services quota list --service={service}"
                            " or the console's Quotas page)" if service else
                            "retry later, or request more quota on the console's Quotas page")


def _service_disabled(exc: Any, action: str, meta: Mapping[str, str]) -> MldockError:
    text = _message(exc)
    service = meta.get("service") or _search((_API_TEXT,), [text]) or "the API"
    title = meta.get("serviceTitle") or service
    project = (meta.get("consumer", "").removeprefix("projects/")
               or meta.get("containerInfo") or _search((_PROJECT_TEXT,), [text]))
    in_project = f" in project {project}" if project else ""
    flag = f" --project {project}" if project else ""
    named = f"{title} ({service})" if title != service else service
    return MldockError(f"cannot {action}: {named} is not enabled{in_project}",
                       hint=f"enable it: gcloud services enable {service}{flag} (then wait a"
                            " minute and retry)")


def _project_not_found(exc: Any, action: str, meta: Mapping[str, str]) -> MldockError:
    project = (meta.get("consumer", "").removeprefix("projects/")
               or _search((_PROJECT_TEXT,), [_message(exc)]) or "the project")
    return NotFoundError(f"cannot {action}: project {project!r} does not exist or the"
                         " credentials cannot use it", hint="check project in mldock.toml"
                         " ([deploy.vertex] or [storage.gcs]) against 'gcloud projects list'")


def _project_missing(exc: Any) -> bool:
    text = _message(exc)
    return bool(_PROJECT_NOT_FOUND.search(text)) or (
        "permission denied on resource project" in text.lower())


def _says_bucket_missing(exc: Any) -> bool:
    """Cloud Storage says "The specified bucket does not exist." (an object: "No such object")."""
    text = " ".join(_texts(exc)).lower()
    return "bucket does not exist" in text or "bucket not found" in text or (
        "bucket" in text and "no such object" not in text and _reason(exc) == "notFound"
        and "object" not in text)


def _is_unreachable(exc: BaseException) -> bool:
    """The socket-level failures: the builtins, and requests'/urllib3's (OSError subclasses)."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    name = type(exc).__name__
    from_http_stack = type(exc).__module__.startswith(("requests", "urllib3"))
    return from_http_stack and ("Connect" in name or name in ("ReadTimeout", "Timeout",
                                                              "SSLError", "ProxyError"))


def _unreachable(exc: BaseException, action: str, resource: str | None) -> MldockError:
    where = f" for {resource}" if resource else ""
    return BackendUnavailableError(
        f"cannot {action}: Google Cloud is not reachable{where} ({type(exc).__name__})",
        hint="check the network and proxy settings, and endpoint_url / api_endpoint in"
             " mldock.toml or STORAGE_EMULATOR_HOST")


# --- reading Google's error details ---------------------------------------------------------
def _reason(exc: Any) -> str:
    reason = getattr(exc, "reason", None)
    if reason:
        return str(reason)
    for error in getattr(exc, "errors", None) or ():
        if isinstance(error, Mapping) and error.get("reason"):
            return str(error["reason"])
    return ""


def _metadata(exc: Any) -> Mapping[str, str]:
    meta = getattr(exc, "metadata", None)
    return dict(meta) if meta else {}


def _domain(exc: Any) -> str | None:
    domain = getattr(exc, "domain", None)
    return str(domain) if domain and domain != "googleapis.com" else None


def _message(exc: Any) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    text = _URL_PREFIX.sub("", text.splitlines()[0] if text else "")
    return text[:300].rstrip(".") or type(exc).__name__


def _texts(exc: Any) -> list[str]:
    texts = [_message(exc)]
    texts += [str(e.get("message", "")) for e in getattr(exc, "errors", None) or ()
              if isinstance(e, Mapping)]
    return texts


def _search(patterns: tuple[re.Pattern[str], ...], texts: list[str]) -> str | None:
    for text in texts:
        for pattern in patterns:
            found = pattern.search(text)
            if found:
                return found.group(1)
    return None


def _bucket_of(resource: str | None) -> str | None:
    if not resource or not resource.startswith("gs://"):
        return None
    return resource[len("gs://"):].split("/", 1)[0] or None


def _service_of(resource: str | None) -> str:
    return "storage" if resource and resource.startswith("gs://") else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


@contextlib.contextmanager
def translated(action: str, *, resource: str | None = None) -> Iterator[None]:
    """Run a block of Google calls; any failure leaves it as one :class:`MldockError`."""
    try:
        yield
    except MldockError:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        raise describe(exc, action=action, resource=resource) from exc


def is_missing(exc: BaseException) -> bool:
    """Whether ``exc`` says an object is absent (a 404 that is not about the bucket)."""
    from google.api_core import exceptions as gax

    exc = _as_api_error(exc, gax)
    return isinstance(exc, gax.NotFound) and not _says_bucket_missing(exc)
