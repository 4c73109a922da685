"""Requests, answers, ARM errors and the route table every resource module adds to.

Routes are data: ``router.add("PUT", WORKSPACE + "/jobs/{name}", handler)``. A ``{name}``
placeholder matches one path segment; matching ignores case, as Azure Resource Manager does.
Other route modules (a teammate's batch routes, say) register the same way, through a module
with a ``register(router, fake)`` function listed in :data:`azureml_fake.server.ROUTE_MODULES`
or passed to ``AzureMLFake(extra_routes=[...])``.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PROVIDER = "Microsoft.MachineLearningServices"
RESOURCE_GROUP = "/subscriptions/{subscription}/resourceGroups/{resource_group}"
WORKSPACE = RESOURCE_GROUP + f"/providers/{PROVIDER}/workspaces/{{workspace}}"


class ArmError(Exception):
    """An answer in ARM's error shape: ``{"error": {"code", "message", "details"}}``."""

    def __init__(self, status: int, code: str, message: str,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def not_found(kind: str, name: str) -> ArmError:
    return ArmError(404, "ResourceNotFound",
                    f"The Resource '{PROVIDER}/{kind}/{name}' was not found.")


def bad_request(message: str, code: str = "UserError", target: str = "") -> ArmError:
    details = [{"code": "BadArgument", "message": message, "target": target}] if target else []
    return ArmError(400, code, message, details)


@dataclass
class Request:
    """One request as the handlers see it; ``params`` holds the path's placeholders."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    base_url: str = ""

    def json(self) -> Any:
        """The body as JSON; a body that is not JSON is the caller's mistake (400)."""
        if not self.body:
            raise bad_request("The request body is required.")
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise bad_request(f"The request body is not valid JSON: {exc}") from None

    def form(self) -> dict[str, str]:
        """An ``application/x-www-form-urlencoded`` body (token endpoints)."""
        return dict(urllib.parse.parse_qsl(self.body.decode()))

    @property
    def url(self) -> str:
        query = urllib.parse.urlencode(self.query)
        return f"{self.base_url}{self.path}" + (f"?{query}" if query else "")


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-serialisable, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", "application/json"
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        return json.dumps(self.body).encode(), "application/json; charset=utf-8"


Handler = Callable[[Request], Response]


@dataclass
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler


class Router:
    """The route table: the first route whose method and path match answers."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        self.routes.append(Route(method.upper(), template,
                                 re.compile(f"^{regex}/?$", re.IGNORECASE), handler))

    def dispatch(self, request: Request) -> Response:
        allowed = False
        for route in self.routes:
            match = route.pattern.match(request.path)
            if match is None:
                continue
            if route.method != request.method:
                allowed = True
                continue
            request.params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
            return route.handler(request)
        if allowed:
            raise ArmError(405, "MethodNotAllowed",
                           f"{request.method} is not supported on {request.path}.")
        raise ArmError(404, "NoRegisteredProviderFound",
                       f"The fake has no route for {request.method} {request.path}.")
