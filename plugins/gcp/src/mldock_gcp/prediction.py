"""Calling a Vertex endpoint: which payloads go through ``:predict`` and how answers come back.

``{"instances": …}`` JSON goes through ``:predict`` (Vertex's contract: it parses the instances,
the container answers ``{"predictions": …}``); anything else, CSV above all, goes through
``:rawPredict``, which Vertex forwards to the container as it is. The container's own errors
(the runtime answers ``{"error": "…"}``) come back as the runtime's answer with its status, as
``mldock predict`` shows them for a local endpoint; Vertex's errors are raised.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mldock.interfaces import Prediction

CONTAINER_ERRORS = (400, 413, 415, 422, 500)  # codes the runtime itself answers with
EXACT_INT = 2 ** 53
PREFIX = re.compile(r"^[A-Z]+ https?://\S+: ")


def integral(value: Any) -> Any:
    """JSON from a protobuf ``Value`` with whole numbers as ints again: ``Value`` holds every
    number as a double (``2`` arrives as ``2.0``), while the runtime answers ``2`` locally."""
    if isinstance(value, float) and value.is_integer() and abs(value) < EXACT_INT:
        return int(value)
    if isinstance(value, list):
        return [integral(item) for item in value]
    if isinstance(value, dict):
        return {key: integral(item) for key, item in value.items()}
    return value


def instances_payload(body: bytes, content_type: str) -> dict[str, Any] | None:
    """``{"instances": …, "parameters": …}`` when ``body`` is such a JSON object, else None."""
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        return None
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(decoded, dict) or not isinstance(decoded.get("instances"), list) or \
            set(decoded) - {"instances", "parameters"}:
        return None
    return decoded


def is_google_error(answer: Any) -> bool:
    """Whether an HTTP answer is Vertex's own error (``{"error": {"code", "status"…}}``) rather
    than the container's (the runtime answers ``{"error": "text"}``)."""
    try:
        error = answer.json().get("error")
    except (ValueError, AttributeError):
        return answer.status_code in (401, 403, 404, 429, 503)
    return isinstance(error, dict)


def container_error(code: int, message: str) -> Prediction:
    """The serving container's error, as the runtime's JSON ``{"error": …}`` with its status.

    Vertex forwards the container's body as the message text (api-core prefixes the URL)."""
    text = PREFIX.sub("", message.strip())
    for _ in range(3):  # the runtime's {"error": …}, possibly inside Vertex's own wrapping
        try:
            inner = json.loads(text)
        except (ValueError, RecursionError):
            break
        if not isinstance(inner, dict) or not isinstance(inner.get("error"), str):
            break
        text = inner["error"]
    return Prediction(json.dumps({"error": text}).encode("utf-8"), "application/json", code)
