"""A custom job's log in Cloud Logging, followed while it runs, with metrics picked out of it.

Vertex AI writes each replica's stdout and stderr to Cloud Logging as entries of the monitored
resource ``ml_job`` (label ``job_id``: the job's numeric id; ``task_name``: ``workerpool0-0``,
``workerpool1-0``, …). :class:`LogFollower` is polled by the job's wait loop; each call asks
``entries:list`` for the job's entries from a timestamp cursor on, oldest first, following page
tokens to the end.

Why a look-back window and not just "after the last timestamp": Cloud Logging indexes entries a
few seconds after they are written, so an entry may appear with a timestamp *older* than one
already read. Each poll therefore starts :data:`LOOK_BACK_S` before the newest timestamp seen, and
entries already shown are skipped by their ``insertId`` (ids older than the window are forgotten,
so memory stays bounded on long jobs).

The runtime prints ``mldock-metric <key>=<value> step=<n>`` for every ``ctx.log_metric``;
:func:`parse_metric` turns such a line into a :class:`~mldock.interfaces.Metric`, so metrics reach
the tracker while the job runs. In a multi-replica job every replica runs the same code: metrics
count once, from the primary (``workerpool0-0``, the runtime's ``ctx.is_primary``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from mldock.interfaces import Metric, ProgressSink
from mldock.runtime.names import METRIC_LINE_PREFIX

from mldock_gcp.clients import VertexClients

PRIMARY_TASK = "workerpool0-0"
LOOK_BACK_S = 10.0
PAGE_SIZE = 1000
METRIC_LINE = re.compile(
    rf"(?:^|\s){re.escape(METRIC_LINE_PREFIX)} (?P<key>[^\s=]+)=(?P<value>\S+)"
    r"(?: step=(?P<step>-?\d+))?\s*$")
MetricSink = Callable[[Sequence[Metric]], None]


def parse_metric(line: str, timestamp: float = 0.0) -> Metric | None:
    """The metric a runtime line reports, or None (also for values that are not numbers)."""
    found = METRIC_LINE.search(line.rstrip("\r\n"))
    if found is None:
        return None
    try:
        value = float(found["value"])
    except ValueError:
        return None
    step = int(found["step"]) if found["step"] is not None else 0
    return Metric(key=found["key"], value=value, step=step, timestamp=timestamp)


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp (nanoseconds allowed) as an aware datetime."""
    return datetime.fromisoformat(text.strip())


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds, as Cloud Logging filters take it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_text(entry: dict[str, Any]) -> str:
    """The line an entry carries: ``textPayload``, else ``jsonPayload.message``."""
    if "textPayload" in entry:
        return str(entry["textPayload"]).rstrip("\n")
    payload = entry.get("jsonPayload") or {}
    return str(payload.get("message", payload)).rstrip("\n") if payload else ""


def entry_task(entry: dict[str, Any]) -> str:
    """The replica that wrote an entry (``workerpool0-0``), or ``""`` when Vertex names none."""
    resource = (entry.get("resource") or {}).get("labels") or {}
    return str(resource.get("task_name")
               or (entry.get("labels") or {}).get("ml.googleapis.com/task_name") or "")


def job_filter(job_id: str, since: datetime | None) -> str:
    """The ``entries:list`` filter of one job's entries from ``since`` on."""
    text = f'resource.type="ml_job" AND resource.labels.job_id="{job_id}"'
    return text + (f' AND timestamp>="{format_time(since)}"' if since else "")


class LogFollower:
    """Reads the new entries of a job's log on each :meth:`poll`.

    Args:
        clients: the Vertex clients (their authorized session reaches Cloud Logging).
        job_id: the custom job's numeric id (the last part of its resource name).
        progress: receives every line (prefixed with the replica when there are several).
        on_metrics: receives the metrics parsed from each poll's lines.
        replicas: how many replicas the job has (prefixes, and metrics from the primary only).
    """

    def __init__(self, clients: VertexClients, job_id: str, progress: ProgressSink,
                 on_metrics: MetricSink | None = None, *, replicas: int = 1):
        self.clients = clients
        self.job_id = job_id
        self.progress = progress
        self.on_metrics = on_metrics
        self.replicas = replicas
        self.newest: datetime | None = None
        self.seen: dict[str, datetime] = {}
        self.seen_metrics: set[str] = set()
        self.lines = 0

    def poll(self) -> int:
        """Show the lines written since the last call; return how many there were."""
        since = self.newest - timedelta(seconds=LOOK_BACK_S) if self.newest else None
        body: dict[str, Any] = {"resourceNames": [f"projects/{self.clients.project}"],
                                "filter": job_filter(self.job_id, since),
                                "orderBy": "timestamp asc", "pageSize": PAGE_SIZE}
        shown = 0
        metrics: list[Metric] = []
        while True:
            page = self.clients.call("POST", "logging", "/v2/entries:list", json=body,
                                     action=f"read the log of custom job {self.job_id}")
            for entry in page.get("entries") or []:
                shown += self._show(entry, metrics)
            token = page.get("nextPageToken")
            if not token:
                break
            body["pageToken"] = token
        self._forget_old()
        if metrics and self.on_metrics is not None:
            self.on_metrics(metrics)
        self.lines += shown
        return shown

    def _show(self, entry: dict[str, Any], metrics: list[Metric]) -> int:
        stamp = parse_time(str(entry.get("timestamp") or entry.get("receiveTimestamp")))
        key = str(entry.get("insertId") or f"{entry.get('logName')}@{entry.get('timestamp')}")
        if key in self.seen:
            return 0
        self.seen[key] = stamp
        if self.newest is None or stamp > self.newest:
            self.newest = stamp
        text = entry_text(entry)
        task = entry_task(entry)
        several = self.replicas > 1
        self.progress(f"[{task}] {text}" if several and task else text)
        if not several or task in ("", PRIMARY_TASK):
            metric = parse_metric(text, stamp.timestamp())
            if metric is not None:
                metrics.append(metric)
                self.seen_metrics.add(metric.key)
        return 1

    def _forget_old(self) -> None:
        if self.newest is None:
            return
        horizon = self.newest - timedelta(seconds=2 * LOOK_BACK_S)
        self.seen = {key: stamp for key, stamp in self.seen.items() if stamp >= horizon}
