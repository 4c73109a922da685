"""A job's log files, followed while it runs, with the runtime's metric lines picked out of them.

What ``ml_client.jobs.stream`` reads, read here without printing to stdout: the run-history
details of the job (``GET {api}/history/v1.0/…/runs/<job>/details``) list its log files as
pre-signed URLs (``logFiles``). The user's output is ``user_logs/std_log.txt``, one
``user_logs/std_log_process_<rank>.txt`` per process in a distributed job (the legacy runtime:
``azureml-logs/70_driver_log[_<rank>].txt``). :class:`LogFollower` is polled by the job's wait
loop and asks each file only for the bytes after what it has shown (an HTTP ``Range``), so no
line is shown twice and a long log is not downloaded again on every poll. With several processes,
lines are prefixed with their rank.

The runtime prints ``mldock-metric <key>=<value> step=<n>`` for every ``ctx.log_metric``;
:func:`parse_metric` turns such a line into a :class:`~mldock.interfaces.Metric`, so metrics reach
the tracker while the job runs. Every rank runs the same code: metrics count once, from rank 0
(the runtime's ``ctx.is_primary``).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mldock.errors import MldockError
from mldock.interfaces import Metric, ProgressSink

from mldock_azure.errors import translated
from mldock_azure.workspace import AzureMLClients

METRIC_LINE = re.compile(
    r"(?:^|\s)mldock-metric (?P<key>[^\s=]+)=(?P<value>\S+)(?: step=(?P<step>-?\d+))?\s*$")
USER_LOG = re.compile(r"^(?:user_logs/std_log|azureml-logs/70_driver_log)"
                      r"(?:_process)?(?:_(?P<rank>\d+))?\.txt$")
MetricSink = Callable[[Sequence[Metric]], None]
MAX_PARTIAL = 1 << 20  # a "line" this long without a newline is shown as it is


def parse_metric(line: str, timestamp: float = 0.0) -> Metric | None:
    """The metric a runtime line reports, or None (also for values that are not finite numbers)."""
    found = METRIC_LINE.search(line.rstrip("\r\n"))
    if found is None:
        return None
    try:
        value = float(found["value"])
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    step = int(found["step"]) if found["step"] is not None else 0
    return Metric(key=found["key"], value=value, step=step, timestamp=timestamp)


def run_details(clients: AzureMLClients, job_name: str) -> dict[str, Any]:
    """The job's run-history details (``status``, ``logFiles``, ``error``…); ``{}`` while the run
    history does not know the job yet (it appears once the job is queued)."""
    url = clients.run_url(job_name) + "/details"
    with translated(f"read the run history of job {job_name}", endpoint=url):
        status, body = clients.get(url)
    if status == 404:
        return {}
    if status in (401, 403):
        raise MldockError(f"cannot read the logs of job {job_name}: access denied (HTTP"
                          f" {status})", hint="assign the role 'AzureML Data Scientist' on the"
                                              " workspace to the identity mldock runs as")
    if status != 200:
        raise MldockError(f"cannot read the logs of job {job_name}: the run history answered"
                          f" HTTP {status}", hint="retry; the job itself is not affected")
    try:
        found = json.loads(body)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def failure_message(details: dict[str, Any]) -> str | None:
    """The error the run history recorded for a failed job (``error.error.message``)."""
    error = details.get("error") or {}
    inner = error.get("error") if isinstance(error, dict) else None
    if isinstance(inner, dict):
        message = str(inner.get("message") or inner.get("code") or "").strip()
        return message.splitlines()[0][:500] if message else None
    return None


@dataclass
class _LogFile:
    rank: int | None
    offset: int = 0
    partial: bytes = b""


class LogFollower:
    """Shows the new lines of a job's user logs on each :meth:`poll`.

    Args:
        clients: the workspace's clients (run history, log URLs).
        job_name: the job.
        progress: receives every line (prefixed with the rank when there are several).
        on_metrics: receives the metrics parsed from each batch of lines.
    """

    def __init__(self, clients: AzureMLClients, job_name: str, progress: ProgressSink,
                 on_metrics: MetricSink | None = None):
        self.clients = clients
        self.job_name = job_name
        self.progress = progress
        self.on_metrics = on_metrics
        self.files: dict[str, _LogFile] = {}
        self.seen_metrics: set[str] = set()
        self.lines = 0

    def poll(self, details: dict[str, Any], *, final: bool = False) -> int:
        """Show the lines written since the last call (``details``: the job's run-history
        details, read by the caller); ``final`` also shows a last line without a newline."""
        urls = {name: str(url) for name, url in (details.get("logFiles") or {}).items()
                if USER_LOG.match(name)}
        for name in urls:
            if name not in self.files:
                found = USER_LOG.match(name)
                rank = found["rank"] if found else None
                self.files[name] = _LogFile(rank=int(rank) if rank is not None else None)
        shown = 0
        for name in sorted(self.files, key=lambda n: (self.files[n].rank or 0, n)):
            if name in urls:
                shown += self._read(name, urls[name], final=final)
        self.lines += shown
        return shown

    def _read(self, name: str, url: str, *, final: bool) -> int:
        state = self.files[name]
        with translated(f"read the log {name} of job {self.job_name}"):
            status, body = self.clients.get(url, authenticated=False,
                                            headers={"Range": f"bytes={state.offset}-"})
        if status == 200:  # the whole file: the server ignored the range
            body = body[state.offset:]
        elif status != 206:  # 416: nothing new; 404: not written yet
            body = b""
        state.offset += len(body)
        text = state.partial + body
        lines = text.split(b"\n")
        state.partial = lines.pop()
        if final or len(state.partial) > MAX_PARTIAL:
            if state.partial:
                lines.append(state.partial)
            state.partial = b""
        self._show(state, [line.decode("utf-8", "replace").rstrip("\r") for line in lines])
        return len(lines)

    def _show(self, state: _LogFile, lines: list[str]) -> None:
        several = len(self.files) > 1
        prefix = f"[rank {state.rank or 0}] " if several else ""
        tracks_metrics = not several or not state.rank
        now = time.time()
        metrics = []
        for line in lines:
            self.progress(prefix + line)
            metric = parse_metric(line, now) if tracks_metrics else None
            if metric is not None:
                metrics.append(metric)
                self.seen_metrics.add(metric.key)
        if metrics and self.on_metrics is not None:
            self.on_metrics(metrics)
