"""Long-running operations the way ARM answers them.

A PUT or DELETE that takes time answers 201/202 at once with two headers: ``Azure-AsyncOperation``
(an operation-status URL answering ``{"status": "InProgress" | "Succeeded" | "Failed" |
"Canceled", "error": ...}``) and ``Location`` (answering 202 while the operation runs, then the
final result). azure-core's ``ARMPolling`` follows the first; the second is there because ARM
sends both and a client may prefer it. The status is not stored: each operation keeps a function
that reads the resource's own state, so the answer is always what the resource says now.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .routing import PROVIDER, ArmError, Request, Response, Router

TERMINAL = {"Succeeded", "Failed", "Canceled"}
StatusFunction = Callable[[], tuple[str, dict[str, Any] | None]]
ResultFunction = Callable[[], Any]
RETRY_AFTER = "1"  # seconds; the SDK's pollers honour it


@dataclass
class Operation:
    status: StatusFunction
    result: ResultFunction


class Operations:
    """Operations by id, and the two polling routes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._operations: dict[str, Operation] = {}

    def start(self, request: Request, status: StatusFunction,
              result: ResultFunction | None = None) -> dict[str, str]:
        """Register an operation; returns the headers of the 201/202 that starts it."""
        operation_id = uuid.uuid4().hex
        with self._lock:
            self._operations[operation_id] = Operation(status, result or (lambda: None))
        subscription = request.params.get("subscription", "")
        base = (f"{request.base_url}/subscriptions/{subscription}/providers/{PROVIDER}"
                f"/locations/local")
        version = request.query.get("api-version", "")
        return {
            "Azure-AsyncOperation": f"{base}/mfeOperationsStatus/{operation_id}"
                                    f"?api-version={version}",
            "Location": f"{base}/mfeOperationResults/{operation_id}?api-version={version}",
            "Retry-After": RETRY_AFTER,
        }

    def register(self, router: Router) -> None:
        base = f"/subscriptions/{{subscription}}/providers/{PROVIDER}/locations/{{location}}"
        router.add("GET", base + "/mfeOperationsStatus/{operation}", self._status)
        router.add("GET", base + "/mfeOperationResults/{operation}", self._result)

    def _find(self, request: Request) -> tuple[str, Operation]:
        operation_id = request.params["operation"]
        with self._lock:
            operation = self._operations.get(operation_id)
        if operation is None:
            raise ArmError(404, "NotFound", f"No operation {operation_id}.")
        return operation_id, operation

    def _status(self, request: Request) -> Response:
        operation_id, operation = self._find(request)
        state, error = operation.status()
        body: dict[str, Any] = {"id": request.path, "name": operation_id, "status": state}
        if error is not None:
            body["error"] = error
        headers = {} if state in TERMINAL else {"Retry-After": RETRY_AFTER}
        return Response(200, body, headers)

    def _result(self, request: Request) -> Response:
        _, operation = self._find(request)
        state, error = operation.status()
        if state not in TERMINAL:
            return Response(202, None, {"Location": request.url, "Retry-After": RETRY_AFTER})
        if state == "Failed":
            return Response(400, {"error": error or {"code": "Failed", "message": "failed"}})
        result = operation.result()
        return Response(200, result) if result is not None else Response(204)
