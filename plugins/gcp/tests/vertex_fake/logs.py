"""Cloud Logging for the fake: job containers' output as log entries, ``POST /v2/entries:list``.

Each line a job replica writes becomes an entry like Vertex AI's: ``resource.type = "ml_job"``
with ``resource.labels.job_id`` / ``task_name``, ``textPayload``, the container's own
``timestamp``, ``severity`` INFO (stdout) or ERROR (stderr), and ``labels``. Entries appear while
the job runs, so a client polling with ``timestamp>"…"`` streams them as they come.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from vertex_fake import filters
from vertex_fake.errors import ApiError, invalid
from vertex_fake.routing import Request

REQUEST_FIELDS = {"resourceNames", "filter", "orderBy", "pageSize", "pageToken", "projectIds"}
MAX_PAGE = 1000


class LogStore:
    """Entries in arrival order, appended by container followers and read by the route."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake
        self._entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._serial = itertools.count(1)

    def job_line(self, job_id: str, task: str, stream: str, timestamp: str, line: str) -> None:
        """One line of a job replica (``task``: ``workerpool0-0``)."""
        entry = {
            "logName": f"projects/{self.fake.project}/logs/{task}",
            "resource": {"type": "ml_job", "labels": {
                "job_id": job_id, "project_id": self.fake.project, "task_name": task}},
            "textPayload": line, "timestamp": timestamp, "receiveTimestamp": timestamp,
            "severity": "ERROR" if stream == "stderr" else "INFO",
            "insertId": f"{next(self._serial):012x}",
            "labels": {"ml.googleapis.com/job_id/log_area": "user",
                       "ml.googleapis.com/endpoint": "", "compute.googleapis.com/resource_name":
                       f"cmle-training-{job_id}-{task}"},
        }
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)


def log_store(fake: Any) -> LogStore:
    with fake.lock:
        found = fake.extra.get("logs")
        if found is None:
            found = fake.extra["logs"] = LogStore(fake)
        return found


def list_entries(fake: Any, request: Request) -> dict[str, Any]:
    """``entries:list``: filter, order by timestamp, page by offset."""
    body = request.json()
    unknown = set(body) - REQUEST_FIELDS
    if unknown:
        raise invalid(f"Invalid JSON payload received. Unknown name \"{sorted(unknown)[0]}\":"
                      " Cannot find field.")
    names = body.get("resourceNames") or [f"projects/{p}" for p in body.get("projectIds", [])]
    if not names:
        raise invalid("resource_names: at least one resource name is required.",
                      "resource_names")
    for name in names:
        if name not in (f"projects/{fake.project}", f"projects/{fake.project_number}"):
            raise ApiError("PERMISSION_DENIED", f"The caller does not have permission to read"
                           f" logs of {name}.")
    match = filters.parse(body.get("filter", ""))
    order = (body.get("orderBy") or "timestamp asc").strip().lower()
    if order not in ("timestamp asc", "timestamp desc"):
        raise invalid(f"order_by: only timestamp asc|desc, got {order!r}.", "order_by")
    found = [entry for entry in log_store(fake).entries() if match(entry)]
    found.sort(key=lambda entry: filters._key(entry["timestamp"], "timestamp"),
               reverse=order.endswith("desc"))
    start = int(body.get("pageToken") or 0)
    size = min(int(body.get("pageSize") or MAX_PAGE), MAX_PAGE)
    answer: dict[str, Any] = {"entries": found[start:start + size]}
    if start + size < len(found):
        answer["nextPageToken"] = str(start + size)
    return answer


ROUTES = [("POST", "/v2/entries:list", list_entries)]
