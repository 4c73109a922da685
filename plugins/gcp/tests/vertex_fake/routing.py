"""Table-driven routing: a route module lists ``ROUTES`` and the server dispatches on them.

A route is ``(verb, template, handler)``. Templates read like the API's URL patterns:
``/v1/projects/{project}/locations/{location}/customJobs/{job}:cancel``; a ``{name}`` matches one
path segment (no ``/`` or ``:``), ``{name*}`` matches the rest of the path. Handlers take
``(fake, request)`` and return a :class:`Response` (or a dict / proto message, sent as JSON).

Adding an API to the fake is adding a module with ``ROUTES`` and naming it in
``server.ROUTE_MODULES`` (or ``fake.add_routes(module.ROUTES)`` from a test).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from vertex_fake.errors import ApiError, invalid

Handler = Callable[[Any, "Request"], Any]


@dataclass
class Request:
    """One HTTP request, as a handler sees it."""

    method: str
    path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    @property
    def query(self) -> dict[str, str]:
        """Query parameters (first value of each); ``$alt`` keeps its ``;``-separated tail."""
        return {key: values[0] for key, values in
                urllib.parse.parse_qs(self.raw_query, keep_blank_values=True).items()}

    @property
    def int_enums(self) -> bool:
        """Whether the client asked for enums as numbers (``$alt=json;enum-encoding=int``)."""
        return "enum-encoding=int" in urllib.parse.unquote(self.raw_query)

    def json(self) -> dict[str, Any]:
        """The body as a JSON object (400 INVALID_ARGUMENT when it is not one)."""
        if not self.body.strip():
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise invalid(f"Invalid JSON payload received. {exc}") from exc
        if not isinstance(data, dict):
            raise invalid("Invalid JSON payload received. Expected an object.")
        return data

    def message(self, message_type: Any, **path_fields: str) -> Any:
        """The body parsed into the API's own proto-plus type, as the service parses it.

        Unknown fields, wrong types and bad enum values are a 400, worded like Google's
        ("Invalid JSON payload received. Unknown name …"). ``path_fields`` are the request
        fields that travel in the URL (``parent``, ``endpoint``…), set after parsing.
        """
        text = self.body.decode("utf-8", "replace") if self.body.strip() else "{}"
        try:
            parsed = message_type.from_json(text)
        except Exception as exc:
            raise invalid(f"Invalid JSON payload received. {_first_line(exc)}") from exc
        for name, value in path_fields.items():
            setattr(parsed, name, value)
        return parsed


@dataclass
class Response:
    """An answer: a status, a body and its content type."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(data).encode())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _compile(template: str) -> re.Pattern[str]:
    pattern = ""
    for part in re.split(r"(\{[a-zA-Z_]+\*?\})", template):
        if part.startswith("{"):
            name = part[1:-1]
            pattern += (f"(?P<{name[:-1]}>.+)" if name.endswith("*")
                        else f"(?P<{name}>[^/:]+)")
        else:
            pattern += re.escape(part)
    return re.compile(pattern + "$")


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    template: str


class Router:
    """Routes in the order they were added; the first whose verb and pattern match answers."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, routes: Iterable[tuple[str, str, Handler]]) -> None:
        for method, template, handler in routes:
            self.routes.append(Route(method.upper(), _compile(template), handler, template))

    def match(self, request: Request) -> Handler:
        """The handler for ``request`` (with ``request.params`` filled), or a 404/405."""
        allowed = False
        for route in self.routes:
            found = route.pattern.match(request.path)
            if not found:
                continue
            if route.method != request.method:
                allowed = True
                continue
            request.params = {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
            return route.handler
        if allowed:
            raise ApiError("INVALID_ARGUMENT", f"Method {request.method} is not allowed on"
                           f" {request.path}", http_status=405)
        raise ApiError("NOT_FOUND", f"The fake does not serve {request.method} {request.path}"
                       " (add a route module to vertex_fake if mldock needs it)")
