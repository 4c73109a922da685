"""Metrics are sent in batches by a background thread: the training loop never waits for MLflow."""

from __future__ import annotations

import threading
import time

import pytest
from mldock.errors import BackendUnavailableError, MldockError
from mldock.interfaces import Metric
from mldock_mlflow.batching import MetricQueue
from mldock_mlflow.tracker import MlflowTracker
from mlflow.tracking import MlflowClient


def test_ten_thousand_metrics_return_quickly_and_all_arrive(mlflow_server):
    """10,000 log_metrics calls cost a queue append each; flush() waits for all of them."""
    tracker = MlflowTracker(mlflow_server.uri)
    run_id = tracker.create_run("batching")
    start = time.perf_counter()
    for step in range(10_000):
        tracker.log_metrics(run_id, [Metric("loss", 1.0 / (step + 1), step)])
    loop = time.perf_counter() - start
    tracker.flush()
    flushed = time.perf_counter() - start
    try:
        # one synchronous log_metric costs ~8 ms on this server: 10,000 of them would take 80 s
        assert loop < 2.0, f"the loop took {loop:.2f} s"
        history = MlflowClient(mlflow_server.url).get_metric_history(run_id, "loss")
        assert sorted(m.step for m in history) == list(range(10_000))
        assert flushed < 60, f"sending took {flushed:.1f} s"
    finally:
        tracker.close()


def test_a_training_loop_is_not_slowed_by_a_slow_server():
    """With a sender that takes 50 ms per batch, logging stays ~free until the queue is full."""
    sent: list[int] = []

    def slow_send(run_id, rows):
        time.sleep(0.05)
        sent.extend(row[4] for row in rows)

    queue = MetricQueue(slow_send, lambda exc: False, max_pending=5_000)
    start = time.perf_counter()
    for step in range(3_000):
        queue.put([("run", "m", float(step), 0, step)])
    assert time.perf_counter() - start < 0.5
    queue.close()
    assert sent == list(range(3_000))


def test_a_full_queue_makes_the_producer_wait_instead_of_growing():
    gate = threading.Event()
    sent: list[int] = []

    def blocked_send(run_id, rows):
        gate.wait(10)
        sent.extend(row[4] for row in rows)

    queue = MetricQueue(blocked_send, lambda exc: False, max_pending=1_000, batch=500)
    queue.put([("run", "m", 0.0, 0, i) for i in range(1_000)])
    waited = threading.Event()

    def produce():
        queue.put([("run", "m", 0.0, 0, 1_000 + i) for i in range(600)])
        waited.set()

    producer = threading.Thread(target=produce)
    producer.start()
    assert not waited.wait(0.5), "put() should wait while 1,000 values are pending"
    assert queue.pending <= 1_000
    gate.set()
    producer.join(10)
    queue.close()
    assert sent == list(range(1_600))


def test_transient_failures_are_retried_and_nothing_is_lost():
    failures = [BackendUnavailableError("down"), BackendUnavailableError("still down")]
    sent: list[int] = []

    def flaky(run_id, rows):
        if failures:
            raise failures.pop(0)
        sent.extend(row[4] for row in rows)

    queue = MetricQueue(flaky, lambda exc: isinstance(exc, BackendUnavailableError))
    queue.put([("run", "m", 1.0, 0, i) for i in range(10)])
    queue.flush(timeout=30)
    assert sent == list(range(10))
    queue.close()


def test_a_refused_batch_is_reported_once_by_flush():
    def refuse(run_id, rows):
        if run_id == "bad":
            raise MldockError("run bad no longer exists")

    queue = MetricQueue(refuse, lambda exc: False)
    queue.put([("bad", "m", 1.0, 0, 0), ("bad", "m", 2.0, 0, 1), ("good", "m", 1.0, 0, 0)])
    with pytest.raises(MldockError, match=r"no longer exists \(2 metric value\(s\) not saved\)"):
        queue.flush()
    queue.flush()  # reported once; the good run's value went through
    queue.close()


def test_flush_gives_up_with_the_error_when_the_server_stays_down():
    def down(run_id, rows):
        raise BackendUnavailableError("MLflow server http://127.0.0.1:1 is not reachable")

    queue = MetricQueue(down, lambda exc: True, flush_timeout=1.0)
    queue.put([("run", "m", 1.0, 0, 0)])
    start = time.monotonic()
    with pytest.raises(BackendUnavailableError, match="not reachable"):
        queue.flush()
    assert time.monotonic() - start < 10
    assert queue.pending == 1  # kept for a later retry
    with pytest.raises(BackendUnavailableError):
        queue.close(timeout=0.5)
