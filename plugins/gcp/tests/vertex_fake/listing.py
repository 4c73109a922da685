"""``list`` calls: filter (``filters``), then pages of ``pageSize`` with an offset token."""

from __future__ import annotations

from typing import Any

from vertex_fake import filters, wire
from vertex_fake.errors import invalid
from vertex_fake.routing import Request

DEFAULT_PAGE = 100


def page(fake: Any, request: Request, collection: str, parent: str, key: str) -> dict[str, Any]:
    """``{key: [...], "nextPageToken": …}`` of the resources under ``parent``."""
    query = request.query
    match = filters.parse(query.get("filter", ""))
    with fake.lock:
        found = [item for item in (wire.to_wire(resource, request.int_enums)
                                   for resource in fake.list(collection, parent))
                 if match(_names_too(item, request.int_enums))]
    try:
        start = int(query.get("pageToken") or 0)
        size = int(query.get("pageSize") or DEFAULT_PAGE) or DEFAULT_PAGE
    except ValueError as exc:
        raise invalid("page_token or page_size is not a number.") from exc
    answer: dict[str, Any] = {key: found[start:start + size]}
    if start + size < len(found):
        answer["nextPageToken"] = str(start + size)
    return answer


def _names_too(item: dict[str, Any], int_enums: bool) -> dict[str, Any]:
    """Filters compare enum names (``state="JOB_STATE_SUCCEEDED"``) even when the answer
    carries numbers."""
    if not int_enums or "state" not in item:
        return item
    return {**item, "state": _state_name(item["state"])}


def _state_name(value: Any) -> Any:
    from google.cloud.aiplatform_v1 import types

    for enum in (types.JobState, types.PipelineState):
        try:
            return enum(int(value)).name
        except (ValueError, TypeError):
            continue
    return value
