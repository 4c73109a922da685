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


# --- entries:list on the fake ------------------------------------------------------------------


@pytest.fixture
def follower_for(vertex_fake):
    """``follower_for(replicas=1)``: (job id, the fake's log store, a follower, lines, metric
    batches) for a new job id."""
    import uuid

    from mldock_gcp.clients import CredentialChain, VertexClients
    from mldock_gcp.config import VertexOptions
    from mldock_gcp.logs import LogFollower
    from vertex_fake.logs import log_store

    clients = VertexClients(VertexOptions(project=vertex_fake.project,
                                          api_endpoint=vertex_fake.url),
                            CredentialChain(anonymous=True))

    def make(replicas: int = 1):
        job_id = str(uuid.uuid4().int)[:18]
        lines: list[str] = []
        batches: list[list] = []
        follower = LogFollower(clients, job_id, lines.append, batches.append, replicas=replicas)
        return job_id, log_store(vertex_fake), follower, lines, batches

    return make


def stamp(seconds: float) -> str:
    moment = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # nanoseconds, as Docker writes


def test_every_page_is_read_and_nothing_is_shown_twice(follower_for):
    job_id, store, follower, lines, batches = follower_for()
    for i in range(1500):  # more than one page of 1000
        store.job_line(job_id, "workerpool0-0", "stdout", stamp(i / 1000), f"line {i}")
    assert follower.poll() == 1500
    assert lines == [f"line {i}" for i in range(1500)]
    assert follower.poll() == 0 and len(lines) == 1500  # the look-back window re-reads; skipped
    store.job_line(job_id, "workerpool0-0", "stdout", stamp(2), "mldock-metric loss=0.5 step=3")
    assert follower.poll() == 1
    ((metric,),) = batches
    assert (metric.key, metric.value, metric.step) == ("loss", 0.5, 3)
    assert metric.timestamp == datetime(2026, 3, 1, 0, 0, 2, 0, tzinfo=UTC).timestamp()


def test_a_late_entry_within_the_window_is_shown_once(follower_for):
    """Cloud Logging may index an entry after newer ones: it still shows, once."""
    job_id, store, follower, lines, _ = follower_for()
    store.job_line(job_id, "workerpool0-0", "stdout", stamp(10), "newer")
    follower.poll()
    store.job_line(job_id, "workerpool0-0", "stderr", stamp(5), "older, indexed late")
    assert follower.poll() == 1
    assert lines == ["newer", "older, indexed late"]
    follower.poll()
    assert lines == ["newer", "older, indexed late"]


def test_other_jobs_lines_are_not_shown(follower_for):
    job_id, store, follower, lines, _ = follower_for()
    other, *_ = follower_for()
    store.job_line(other, "workerpool0-0", "stdout", stamp(1), "someone else's")
    store.job_line(job_id, "workerpool0-0", "stdout", stamp(1), "mine")
    follower.poll()
    assert lines == ["mine"]


def test_several_replicas_are_prefixed_and_metrics_come_from_the_primary(follower_for):
    job_id, store, follower, lines, batches = follower_for(replicas=2)
    store.job_line(job_id, "workerpool0-0", "stdout", stamp(1), "mldock-metric acc=0.9 step=1")
    store.job_line(job_id, "workerpool1-0", "stdout", stamp(1.5), "mldock-metric acc=0.8 step=1")
    follower.poll()
    assert lines == ["[workerpool0-0] mldock-metric acc=0.9 step=1",
                     "[workerpool1-0] mldock-metric acc=0.8 step=1"]
    assert [(m.key, m.value) for batch in batches for m in batch] == [("acc", 0.9)]
    assert follower.seen_metrics == {"acc"}


def test_the_request_is_what_cloud_logging_takes(follower_for, vertex_fake):
    """The fake refuses unknown fields and filters it cannot parse: what was sent is checked
    there; the filter names the job and, from the second poll on, a timestamp."""
    import json

    job_id, store, follower, _, _ = follower_for()
    store.job_line(job_id, "workerpool0-0", "stdout", stamp(30), "x")
    follower.poll()
    follower.poll()
    sent = [json.loads(body) for _, _, body in vertex_fake.requests_to("POST /v2/entries:list")
            if job_id.encode() in body][-2:]
    assert sent[0]["resourceNames"] == [f"projects/{vertex_fake.project}"]
    assert sent[0]["orderBy"] == "timestamp asc" and sent[0]["pageSize"] == 1000
    assert "timestamp" not in sent[0]["filter"]
    assert sent[1]["filter"].endswith(' AND timestamp>="2026-03-01T00:00:20.000000Z"')
