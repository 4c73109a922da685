"""Google's error shape: ``{"error": {"code", "message", "status", "details"}}``.

Every refusal the fake answers goes through :class:`ApiError`, so the SDK's own error mapping
(``google.api_core.exceptions.from_http_response``) turns it into the exception the real service
would cause, details and all (``ErrorInfo`` reasons are what mldock-gcp's translation reads).
"""

from __future__ import annotations

from typing import Any

# google.rpc.Code: name -> (number, the HTTP status Google maps it to)
CODES: dict[str, tuple[int, int]] = {
    "OK": (0, 200),
    "CANCELLED": (1, 499),
    "UNKNOWN": (2, 500),
    "INVALID_ARGUMENT": (3, 400),
    "DEADLINE_EXCEEDED": (4, 504),
    "NOT_FOUND": (5, 404),
    "ALREADY_EXISTS": (6, 409),
    "PERMISSION_DENIED": (7, 403),
    "RESOURCE_EXHAUSTED": (8, 429),
    "FAILED_PRECONDITION": (9, 400),
    "ABORTED": (10, 409),
    "OUT_OF_RANGE": (11, 400),
    "UNIMPLEMENTED": (12, 501),
    "INTERNAL": (13, 500),
    "UNAVAILABLE": (14, 503),
    "DATA_LOSS": (15, 500),
    "UNAUTHENTICATED": (16, 401),
}
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


class ApiError(Exception):
    """A refusal in Google's shape; raise it from any handler."""

    def __init__(self, status: str, message: str, details: list[dict[str, Any]] | None = None,
                 http_status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = list(details or [])
        self.http_status = http_status or CODES[status][1]

    def body(self) -> dict[str, Any]:
        """The JSON body of the HTTP answer."""
        return {"error": {"code": self.http_status, "message": self.message,
                          "status": self.status, "details": self.details}}

    def rpc_status(self) -> dict[str, Any]:
        """A ``google.rpc.Status`` (an operation's or a job's ``error``): the numeric code."""
        return {"code": CODES[self.status][0], "message": self.message}


def error_info(reason: str, domain: str = "googleapis.com",
               **metadata: str) -> dict[str, Any]:
    """A ``google.rpc.ErrorInfo`` detail (what the service attaches to 403s and 429s)."""
    return {"@type": ERROR_INFO, "reason": reason, "domain": domain, "metadata": metadata}


def invalid(message: str, field: str | None = None) -> ApiError:
    """400 INVALID_ARGUMENT, with a ``BadRequest`` field violation when ``field`` is known."""
    details = ([{"@type": BAD_REQUEST,
                 "fieldViolations": [{"field": field, "description": message}]}]
               if field else [])
    return ApiError("INVALID_ARGUMENT", message, details)


def not_found(name: str) -> ApiError:
    """404 NOT_FOUND worded like Vertex AI ("… does not exist")."""
    return ApiError("NOT_FOUND", f"The resource {name!r} does not exist.")


def permission_denied(permission: str, resource: str) -> ApiError:
    """403 with the ``IAM_PERMISSION_DENIED`` reason and the permission, as IAM answers."""
    return ApiError(
        "PERMISSION_DENIED",
        f"Permission '{permission}' denied on resource '{resource}' (or it may not exist).",
        [error_info("IAM_PERMISSION_DENIED", "aiplatform.googleapis.com",
                    permission=permission, resource=resource)])


def service_disabled(service: str, project: str) -> ApiError:
    """403 ``SERVICE_DISABLED``: the API is not enabled in the project."""
    return ApiError(
        "PERMISSION_DENIED",
        f"{service} API has not been used in project {project} before or it is disabled."
        f" Enable it by visiting https://console.developers.google.com/apis/api/{service}"
        f"/overview?project={project} then retry.",
        [error_info("SERVICE_DISABLED", "googleapis.com", service=service,
                    consumer=f"projects/{project}")])
