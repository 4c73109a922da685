"""The fake's resources: ARM documents (camelCase JSON, as the service returns them) by id.

Ids are compared without case, as ARM compares them. Every handler reads and writes through one
re-entrant lock, so a background thread moving a job or a deployment along its states never
races a request reading it.
"""

from __future__ import annotations

import copy
import datetime
import threading
from typing import Any

from .routing import ArmError


def now() -> str:
    """An ISO 8601 UTC timestamp, as ARM's ``systemData`` carries."""
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def system_data(previous: dict[str, Any] | None = None) -> dict[str, Any]:
    created = (previous or {}).get("createdAt") or now()
    return {"createdAt": created, "createdBy": "mldock-fake", "createdByType": "Application",
            "lastModifiedAt": now(), "lastModifiedBy": "mldock-fake",
            "lastModifiedByType": "Application"}


class Store:
    """Resources by ARM id; reads hand out copies so a caller never edits the store by mistake."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._items: dict[str, dict[str, Any]] = {}

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._items[resource["id"].lower()] = copy.deepcopy(resource)
            return copy.deepcopy(resource)

    def get(self, resource_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = self._items.get(resource_id.lower())
            return copy.deepcopy(found) if found is not None else None

    def require(self, resource_id: str, kind: str) -> dict[str, Any]:
        """The resource, or ARM's 404 naming its kind and name."""
        found = self.get(resource_id)
        if found is None:
            name = resource_id.rstrip("/").rsplit("/", 1)[-1]
            raise ArmError(404, "ResourceNotFound", f"The Resource '{kind}/{name}' under"
                           f" {resource_id.rsplit('/', 2)[0]} was not found.")
        return found

    def update(self, resource_id: str, **properties: Any) -> dict[str, Any] | None:
        """Set ``properties.<key>`` on a stored resource (state machines use it)."""
        with self.lock:
            found = self._items.get(resource_id.lower())
            if found is None:
                return None
            found.setdefault("properties", {}).update(properties)
            return copy.deepcopy(found)

    def children(self, parent_id: str, segment: str) -> list[dict[str, Any]]:
        """The direct children ``<parent_id>/<segment>/<name>``, oldest first."""
        prefix = f"{parent_id}/{segment}/".lower()
        with self.lock:
            return [copy.deepcopy(item) for key, item in self._items.items()
                    if key.startswith(prefix) and "/" not in key[len(prefix):]]

    def delete(self, resource_id: str) -> dict[str, Any] | None:
        """Remove a resource and everything below it; returns it (None when absent)."""
        key = resource_id.lower()
        with self.lock:
            for other in [k for k in self._items if k.startswith(key + "/")]:
                del self._items[other]
            return self._items.pop(key, None)
