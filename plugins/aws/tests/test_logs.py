"""Metrics out of a job's log: the runtime's own lines, SageMaker's regexes, CloudWatch via moto."""

from __future__ import annotations

import contextlib
import re
import time
import uuid

import pytest
from mldock.interfaces import Metric
from mldock.runtime.context import TrainingContext
from mldock_aws.logs import LOG_GROUP, LogFollower, metric_definitions, parse_metric


@pytest.fixture
def runtime_lines(tmp_path, capsys):
    """Lines printed by the real in-container runtime's ``ctx.log_metric`` (not hand-written)."""
    ctx = TrainingContext(platform="sagemaker", job_id="j", run_id="r", hyperparameters={},
                          channels={}, model_dir=tmp_path / "m", output_dir=tmp_path / "o",
                          checkpoint_dir=tmp_path / "c")
    ctx.log_metric("accuracy", 0.9734, step=3)
    ctx.log_metric("loss", 1.5e-07)
    ctx.log_metric("epochs", 12, step=12)
    ctx.log_metric("val/f1-score", -0.25, step=0)
    ctx.close()
    return capsys.readouterr().out.splitlines()


def test_runtime_lines_parse_back_to_the_logged_values(runtime_lines):
    parsed = [parse_metric(line, 5.0) for line in runtime_lines]
    assert parsed == [Metric("accuracy", 0.9734, 3, 5.0), Metric("loss", 1.5e-07, 0, 5.0),
                      Metric("epochs", 12.0, 12, 5.0), Metric("val/f1-score", -0.25, 0, 5.0)]


def test_sagemaker_metric_definitions_match_the_same_lines(runtime_lines):
    """SageMaker applies each definition's regex to every log line and parses group 1."""
    definitions = metric_definitions(["accuracy", "loss", "epochs", "val/f1-score"])
    assert [d["Name"] for d in definitions] == ["accuracy", "loss", "epochs", "val/f1-score"]
    for definition, line, value in zip(definitions, runtime_lines, (0.9734, 1.5e-07, 12, -0.25),
                                       strict=True):
        found = re.search(definition["Regex"], line)
        assert found and float(found.group(1)) == value
        assert len(definition["Regex"]) <= 500
    # a definition does not match another metric whose name it prefixes
    assert not re.search(metric_definitions(["acc"])[0]["Regex"], runtime_lines[0])


@pytest.mark.parametrize("line", ["training...", "mldock-metric accuracy=high",
                                  "mldock-metric =1", "mldock-metric accuracy 0.9"])
def test_other_lines_are_not_metrics(line):
    assert parse_metric(line) is None


def test_a_host_prefix_before_the_metric_is_fine():
    assert parse_metric("[1,mpirank:0,algo-1]<stdout>: mldock-metric loss=0.5 step=2\r\n") == \
        Metric("loss", 0.5, 2, 0.0)


def _put(logs, stream: str, messages: list[str]) -> None:
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=LOG_GROUP)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=[
        {"timestamp": now + i, "message": message} for i, message in enumerate(messages)])


def test_follower_reads_each_line_once_and_forwards_metrics(aws):
    """Against CloudWatch Logs on moto: new lines on each poll, none twice, metrics as parsed."""
    logs = aws("logs")
    job = f"job-{uuid.uuid4().hex[:8]}"
    _put(logs, f"{job}/algo-1-1700000000", ["starting", "mldock-metric loss=0.5 step=1"])
    shown, metrics = [], []
    follower = LogFollower(logs, job, shown.append, metrics.extend)
    assert follower.poll() == 2
    assert shown == ["starting", "mldock-metric loss=0.5 step=1"]
    assert follower.poll() == 0
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=f"{job}/algo-1-1700000000",
                        logEvents=[{"timestamp": int(time.time() * 1000) + 10,
                                    "message": "mldock-metric loss=0.25 step=2"}])
    assert follower.poll() == 1
    assert [(m.key, m.value, m.step) for m in metrics] == [("loss", 0.5, 1), ("loss", 0.25, 2)]
    assert follower.seen_metrics == {"loss"} and follower.lines == 3


def test_distributed_jobs_prefix_hosts_and_count_metrics_from_the_master(aws):
    logs = aws("logs")
    job = f"job-{uuid.uuid4().hex[:8]}"
    _put(logs, f"{job}/algo-1-1700000000", ["mldock-metric acc=0.8 step=1"])
    _put(logs, f"{job}/algo-2-1700000000", ["mldock-metric acc=0.7 step=1"])
    shown, metrics = [], []
    LogFollower(logs, job, shown.append, metrics.extend).poll()
    assert sorted(shown) == ["[algo-1] mldock-metric acc=0.8 step=1",
                             "[algo-2] mldock-metric acc=0.7 step=1"]
    assert [(m.key, m.value) for m in metrics] == [("acc", 0.8)]


def test_follower_waits_quietly_for_a_log_that_does_not_exist_yet(aws, start_moto):
    """Before its first line, a job has no stream, and a fresh account not even the group
    (a second moto server, where no test created it)."""
    import boto3

    assert LogFollower(aws("logs"), f"job-{uuid.uuid4().hex[:8]}", print).poll() == 0
    fresh = start_moto()
    logs = boto3.client("logs", endpoint_url=fresh.url, region_name="us-east-1")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.describe_log_streams(logGroupName=LOG_GROUP)
    assert LogFollower(logs, "job-1", print).poll() == 0
