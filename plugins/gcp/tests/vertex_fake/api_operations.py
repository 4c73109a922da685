"""``operations/{id}``: get, wait, cancel, delete, under ``/v1/`` and under ``/ui/`` (the GAPIC
REST transports of aiplatform 2.x list ``/ui/{name=…/operations/*}`` first for polling)."""

from __future__ import annotations

from typing import Any

from vertex_fake.errors import invalid
from vertex_fake.routing import Request

MAX_WAIT_S = 60.0


def _operation(fake: Any, request: Request) -> Any:
    name = fake.canonical(f"{request.params['resource']}/operations/{request.params['op']}")
    return fake.operations.get(name)


def get(fake: Any, request: Request) -> Any:
    return _operation(fake, request)


def wait(fake: Any, request: Request) -> Any:
    """``:wait``: block until done or ``timeout`` (a Duration like ``"30s"``) passes."""
    operation = _operation(fake, request)
    raw = str(request.json().get("timeout") or request.query.get("timeout") or "")
    try:
        timeout = float(raw.rstrip("s")) if raw else MAX_WAIT_S
    except ValueError as exc:
        raise invalid(f"timeout: {raw!r} is not a duration.", "timeout") from exc
    operation.done_event.wait(min(timeout, MAX_WAIT_S))
    return operation


def cancel(fake: Any, request: Request) -> dict[str, Any]:
    _operation(fake, request)
    return {}


def delete(fake: Any, request: Request) -> dict[str, Any]:
    _operation(fake, request)
    return {}


ROUTES = [
    (verb, f"/{prefix}/{{resource*}}/operations/{{op}}{suffix}", handler)
    for prefix in ("v1", "ui")
    for verb, suffix, handler in (("GET", "", get), ("POST", ":wait", wait),
                                  ("GET", ":wait", wait), ("POST", ":cancel", cancel),
                                  ("DELETE", "", delete))
]
