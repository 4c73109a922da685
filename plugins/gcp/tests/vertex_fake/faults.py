"""Fault injection: the next request matching a pattern gets a chosen error instead of an answer.

``fake.fail_next(r"POST .*/customJobs$", 403, "PERMISSION_DENIED", "…", [error_info(…)])``
makes the fake answer exactly what the service would, so a test checks mldock-gcp's translation
end to end (the SDK's exception, then the one-line error). A fault matches
``"<VERB> <path>"``, is used once (``times=``), and is cleared after every test by the fixture.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from vertex_fake.errors import ApiError


@dataclass
class Fault:
    pattern: re.Pattern[str]
    error: ApiError
    times: int


class Faults:
    """Pending faults, first added first used."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, pattern: str, http_status: int, status: str, message: str,
            details: list[dict[str, Any]] | None = None, times: int = 1) -> None:
        error = ApiError(status, message, details, http_status=http_status)
        with self._lock:
            self._faults.append(Fault(re.compile(pattern), error, times))

    def take(self, method: str, path: str) -> ApiError | None:
        """The error for this request, if a fault matches (and one use of it is spent)."""
        key = f"{method} {path}"
        with self._lock:
            for fault in self._faults:
                if fault.pattern.search(key):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault.error
        return None

    def pending(self) -> int:
        with self._lock:
            return len(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
