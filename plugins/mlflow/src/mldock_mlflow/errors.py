"""MLflow failures turned into mldock's one-line errors (what is wrong + what to do).

MLflow's client raises ``MlflowException`` with an ``error_code`` (``UNAUTHENTICATED`` for HTTP 401,
``PERMISSION_DENIED`` for 403, ``RESOURCE_DOES_NOT_EXIST``, ...) and wraps connection failures in
the same class with a long urllib3 message. Users should see neither: this module maps them, and
probes the server once with the standard library so "server not running" is reported in
milliseconds, before MLflow's client spends its retries on it. Nothing here imports MLflow.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from mldock.errors import BackendUnavailableError, MldockError, NotFoundError, UsageError

AUTH_HINT = ("export MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or set"
             ' [tracking.mlflow] username = "env:NAME" and password = "env:NAME"')
UNREACHABLE_HINT = ("start the server (e.g. 'mlflow server --host 127.0.0.1 --port 5000') or fix"
                    " [tracking] uri")
TRANSIENT_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED",
                   "ENDPOINT_NOT_FOUND_TEMPORARILY", "DEADLINE_EXCEEDED"}
CONNECTION_MARKERS = ("Max retries exceeded", "Connection refused", "NewConnectionError",
                      "ConnectionError", "Read timed out", "ConnectTimeout", "RemoteDisconnected",
                      "Connection aborted", "Failed to establish")


class MlflowAuthError(MldockError):
    """The server asked for credentials (HTTP 401) or refused them for this action (HTTP 403)."""

    exit_code = 5


class ExperimentDeletedError(MldockError):
    """The experiment runs should go to exists but is deleted (MLflow keeps its name reserved)."""

    exit_code = 2


def server_unreachable(url: str, reason: str) -> BackendUnavailableError:
    return BackendUnavailableError(f"MLflow server {url} is not reachable: {reason}",
                                   hint=UNREACHABLE_HINT)


def probe(url: str, timeout: float) -> None:
    """Raise :class:`BackendUnavailableError` unless something answers HTTP at ``url``.

    Any HTTP answer counts (even 401 or 404): only "nobody there" is this function's business.
    """
    try:
        # S310 is fine here: url is the tracking server the config names (http or https)
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:  # noqa: S310
            response.read(64)
    except urllib.error.HTTPError:
        return
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = getattr(reason, "strerror", None) or str(reason)
        raise server_unreachable(url, text) from None
    except TimeoutError:
        raise server_unreachable(url, f"no answer within {timeout:g} s") from None
    except (ConnectionError, OSError) as exc:
        raise server_unreachable(url, exc.strerror or str(exc)) from None


def short_message(exc: BaseException) -> str:
    """MLflow's message without its multi-line response bodies and tracebacks."""
    text = getattr(exc, "message", None) or str(exc)
    text = " ".join(str(text).split())
    return text if len(text) <= 300 else text[:297] + "..."


def error_code(exc: BaseException) -> str | None:
    return getattr(exc, "error_code", None)


def is_connection_failure(exc: BaseException) -> bool:
    text = str(exc)
    return (isinstance(exc, (ConnectionError, TimeoutError))
            or any(marker in text for marker in CONNECTION_MARKERS))


def is_transient(exc: BaseException) -> bool:
    """Worth retrying later: the server is down, overloaded or failed internally."""
    return is_connection_failure(exc) or error_code(exc) in TRANSIENT_CODES


def translate(exc: BaseException, *, url: str, action: str, user: str | None = None,
              missing: str | None = None) -> MldockError:
    """The :class:`MldockError` a user should see for ``exc`` raised while doing ``action``.

    Args:
        url: the server's URL (named in every message).
        action: what was being done, e.g. ``"creating run in experiment 'iris'"``.
        user: the basic-auth user in use, if any (named in 401/403 messages; never the password).
        missing: the message for ``RESOURCE_DOES_NOT_EXIST`` (a :class:`NotFoundError`).
    """
    if isinstance(exc, MldockError):
        return exc
    code = error_code(exc)
    if is_connection_failure(exc):
        return server_unreachable(url, f"{action} failed: {short_message(exc)}")
    if code == "UNAUTHENTICATED":
        if user:
            return MlflowAuthError(f"MLflow server {url} rejected the credentials of user"
                                   f" {user!r} (HTTP 401) while {action}",
                                   hint="check the username and password; " + AUTH_HINT)
        return MlflowAuthError(f"MLflow server {url} requires authentication (HTTP 401) while"
                               f" {action}", hint=AUTH_HINT)
    if code == "PERMISSION_DENIED":
        who = f"user {user!r}" if user else "this user"
        return MlflowAuthError(f"MLflow server {url} denied {action} to {who} (HTTP 403)",
                               hint="ask an MLflow admin for EDIT permission on the experiment,"
                                    " or use another account")
    if code == "RESOURCE_DOES_NOT_EXIST" and missing:
        return NotFoundError(missing, hint="see 'mldock runs list' for the runs of this project")
    if code == "INVALID_PARAMETER_VALUE":
        return UsageError(f"MLflow server {url} refused {action}: {short_message(exc)}")
    return MldockError(f"MLflow server {url}: {action} failed: {short_message(exc)}",
                       hint="see the MLflow server's log for details")
