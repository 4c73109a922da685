"""Following a custom job's log in Cloud Logging: parsing offline, then ``entries:list`` on the
Vertex fake (entries written into its log store as a job's replicas would write them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from mldock_gcp.logs import (
    entry_task,
    entry_text,
    format_time,
    job_filter,
    parse_metric,
    parse_time,
)


@pytest.mark.parametrize(("line", "expected"), [
    ("mldock-metric accuracy=0.93 step=1", ("accuracy", 0.93, 1)),
    ("mldock-metric loss=1e-3", ("loss", 0.001, 0)),
    ("2026-01-01 INFO mldock-metric val/f1=0.5 step=12\n", ("val/f1", 0.5, 12)),
    ("mldock-metric nan_metric=nan", None),  # kept: float("nan") parses; checked below
])
def test_metric_lines(line, expected):
    metric = parse_metric(line, 12.5)
    if expected is None:
        assert metric is not None and metric.value != metric.value  # NaN reaches the tracker
        return
    assert metric is not None
    assert (metric.key, metric.value, metric.step, metric.timestamp) == (*expected, 12.5)


@pytest.mark.parametrize("line", ["mldock-metric accuracy=high", "accuracy=0.9",
                                  "xmldock-metric a=1", "mldock-metric a=1 step=x", ""])
def test_lines_that_are_not_metrics(line):
    assert parse_metric(line) is None


def test_entry_text_and_task():
    text = {"textPayload": "hello\n", "resource": {"labels": {"task_name": "workerpool1-0"}}}
    assert (entry_text(text), entry_task(text)) == ("hello", "workerpool1-0")
    structured = {"jsonPayload": {"message": "from json"},
                  "labels": {"ml.googleapis.com/task_name": "workerpool0-0"}}
    assert (entry_text(structured), entry_task(structured)) == ("from json", "workerpool0-0")
    assert (entry_text({}), entry_task({})) == ("", "")


def test_filter_and_timestamps():
    moment = datetime(2026, 1, 2, 3, 4, 5, 678900, tzinfo=UTC)
    assert format_time(moment) == "2026-01-02T03:04:05.678900Z"
    assert parse_time("2026-01-02T03:04:05.678900123Z") == moment
    assert job_filter("42", None) == 'resource.type="ml_job" AND resource.labels.job_id="42"'
    assert job_filter("42", moment - timedelta(seconds=5)).endswith(
        ' AND timestamp>="2026-01-02T03:04:00.678900Z"')
