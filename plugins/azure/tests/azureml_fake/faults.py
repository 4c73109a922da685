"""Fault injection: the next matching request gets the error a test asked for.

``fake.fail_next("GET", r"/workspaces/[^/]+$", 403, "AuthorizationFailed", "...")`` makes the
next GET of a workspace answer 403 in ARM's error shape, once. Tests use it for what the fake's
state cannot produce by itself: a missing role, an exhausted quota, a throttled call.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from .routing import ArmError


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    error: ArmError
    times: int


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Fault] = []

    def add(self, method: str, path_regex: str, status: int, code: str, message: str,
            times: int = 1) -> None:
        fault = Fault(method.upper(), re.compile(path_regex, re.IGNORECASE),
                      ArmError(status, code, message), times)
        with self._lock:
            self._pending.append(fault)

    def take(self, method: str, path: str) -> ArmError | None:
        """The error for this request, consuming one use of the first fault that matches."""
        with self._lock:
            for fault in self._pending:
                if fault.method in (method, "*") and fault.path.search(path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._pending.remove(fault)
                    return fault.error
        return None

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
