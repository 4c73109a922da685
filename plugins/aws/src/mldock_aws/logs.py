"""A training job's CloudWatch log, followed while it runs, with metrics picked out of it.

SageMaker writes each instance's output to the log group ``/aws/sagemaker/TrainingJobs``, in
streams named ``<job>/algo-<n>-<epoch>``. :class:`LogFollower` is polled by the job's wait loop:
each call lists the job's streams (new hosts appear when they start) and reads every stream on
from its last forward token, so no line is shown twice. With several instances, lines are
prefixed with their host.

The runtime prints ``mldock-metric <key>=<value> step=<n>`` for every ``ctx.log_metric``;
:func:`parse_metric` turns such a line into a :class:`~mldock.interfaces.Metric`, so metrics reach
the tracker while the job runs, whatever metric definitions the job declares.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from mldock.interfaces import Metric, ProgressSink
from mldock.runtime.names import METRIC_LINE_PREFIX

from mldock_aws.errors import is_not_found, translated

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
METRIC_LINE = re.compile(
    r"(?:^|\s)mldock-metric (?P<key>[^\s=]+)=(?P<value>\S+)(?: step=(?P<step>-?\d+))?\s*$")
MetricSink = Callable[[list[Metric]], None]


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


def metric_definitions(names: list[str]) -> list[dict[str, str]]:
    """SageMaker ``MetricDefinitions`` matching the runtime's lines for each configured name."""
    number = r"([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|nan|inf))"
    return [{"Name": name, "Regex": f"{METRIC_LINE_PREFIX} {re.escape(name)}={number}"}
            for name in names]


def final_metrics(description: dict[str, Any], seen: set[str]) -> list[Metric]:
    """``FinalMetricDataList`` of a finished job, minus metrics already read from its log."""
    found = []
    for item in description.get("FinalMetricDataList") or []:
        name, value = item.get("MetricName"), item.get("Value")
        if not name or value is None or name in seen or not math.isfinite(float(value)):
            continue
        stamp = item.get("Timestamp")
        when = stamp.timestamp() if hasattr(stamp, "timestamp") else 0.0
        found.append(Metric(key=str(name), value=float(value), step=0, timestamp=when))
    return found


class LogFollower:
    """Reads the new lines of a job's log streams on each :meth:`poll`.

    Args:
        logs: a CloudWatch Logs client.
        job_name: the training job.
        progress: receives every line (prefixed with the host when there are several).
        on_metrics: receives the metrics parsed from each batch of lines.
    """

    def __init__(self, logs: Any, job_name: str, progress: ProgressSink,
                 on_metrics: MetricSink | None = None):
        self.logs = logs
        self.job_name = job_name
        self.progress = progress
        self.on_metrics = on_metrics
        self.tokens: dict[str, str | None] = {}
        self.seen_metrics: set[str] = set()
        self.lines = 0

    def poll(self) -> int:
        """Show the lines written since the last call; return how many there were."""
        shown = 0
        for stream in self._streams():
            shown += self._read(stream)
        self.lines += shown
        return shown

    def _streams(self) -> list[str]:
        with translated(f"list the log streams of training job {self.job_name}"):
            try:
                names: list[str] = []
                paginator = self.logs.get_paginator("describe_log_streams")
                for page in paginator.paginate(logGroupName=LOG_GROUP,
                                               logStreamNamePrefix=f"{self.job_name}/"):
                    names += [s["logStreamName"] for s in page.get("logStreams", [])]
            except Exception as exc:
                if is_not_found(exc):  # the group appears with the first job's first line
                    return []
                raise
        for name in names:
            self.tokens.setdefault(name, None)
        return sorted(self.tokens)

    def _read(self, stream: str) -> int:
        host = stream.split("/", 1)[-1].rsplit("-", 1)[0]  # algo-1-1700000000 -> algo-1
        several = len(self.tokens) > 1
        prefix = f"[{host}] " if several else ""
        # every host of a distributed job runs the same code: metrics count once, from the
        # master (SageMaker's first host, algo-1), like the runtime's ctx.is_master
        tracks_metrics = not several or host == "algo-1"
        count = 0
        while True:
            kwargs: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamName": stream,
                                      "startFromHead": True}
            if self.tokens[stream]:
                kwargs["nextToken"] = self.tokens[stream]
            with translated(f"read the log of training job {self.job_name}"):
                page = self.logs.get_log_events(**kwargs)
            events = page.get("events", [])
            metrics = []
            for event in events:
                message = str(event.get("message", "")).rstrip("\n")
                self.progress(prefix + message)
                metric = (parse_metric(message, event.get("timestamp", 0) / 1000.0)
                          if tracks_metrics else None)
                if metric is not None:
                    metrics.append(metric)
                    self.seen_metrics.add(metric.key)
            if metrics and self.on_metrics is not None:
                self.on_metrics(metrics)
            count += len(events)
            token = page.get("nextForwardToken")
            unchanged = token == self.tokens[stream]
            self.tokens[stream] = token
            if not events or unchanged or not token:
                return count
