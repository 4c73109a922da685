"""Long-running operations: ``projects/…/<resource>/operations/<id>``, polled or waited on.

A handler starts an operation with the metadata the service attaches (``GenericOperationMetadata``
inside a ``*OperationMetadata``), answers it at once, and finishes it later from a worker thread
(a deployment finishes when the container's health route answers). ``GET`` returns the current
state; ``:wait`` blocks up to its ``timeout``. The SDK unpacks ``response`` by its ``@type``, so
the response type must be the one the RPC declares.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from vertex_fake import wire
from vertex_fake.errors import ApiError, not_found


@dataclass
class Operation:
    """One operation; ``response``/``error`` are set once, when it is done."""

    name: str
    metadata: Any
    response: Any = None
    error: ApiError | None = None
    done_event: threading.Event = field(default_factory=threading.Event)

    @property
    def done(self) -> bool:
        return self.done_event.is_set()

    def finish(self, response: Any) -> None:
        """Succeed with ``response`` (a proto-plus message of the RPC's response type)."""
        self.response = response
        self.done_event.set()

    def fail(self, error: ApiError) -> None:
        self.error = error
        self.done_event.set()

    def wire(self, int_enums: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "metadata": wire.packed(self.metadata,
                                                                          int_enums)}
        if self.done:
            data["done"] = True
            if self.error is not None:
                data["error"] = self.error.rpc_status()
            else:
                data["response"] = wire.packed(self.response, int_enums)
        return data


class OperationStore:
    """Every operation of the fake, by name."""

    def __init__(self) -> None:
        self._operations: dict[str, Operation] = {}
        self._lock = threading.Lock()

    def start(self, resource: str, metadata: Any) -> Operation:
        """A new pending operation under ``resource`` (a location or a resource name)."""
        operation = Operation(f"{resource}/operations/{wire.new_id()}", metadata)
        with self._lock:
            self._operations[operation.name] = operation
        return operation

    def get(self, name: str) -> Operation:
        with self._lock:
            found = self._operations.get(name)
        if found is None:
            raise not_found(name)
        return found

    def all(self) -> list[Operation]:
        with self._lock:
            return list(self._operations.values())

    def clear(self) -> None:
        with self._lock:
            self._operations.clear()
