"""Asynchronous, batched metric sending: a training loop never waits for the MLflow server.

:meth:`MetricQueue.put` appends to an in-memory queue and returns (microseconds). One daemon thread
takes up to 1,000 values at a time (MLflow's ``log_batch`` limit), groups them per run and sends one
request per group. Why each rule:

* **Bounded.** At most ``max_pending`` values wait; a producer faster than the server then waits
  for room instead of growing memory without end.
* **Transient failures are retried, never dropped.** Server down, HTTP 5xx/429: the values go back
  to the head of the queue and the sender backs off (up to 5 s) and tries again.
* **Permanent failures are reported, not retried forever.** A batch the server refuses (a deleted
  run, an invalid key, credentials refused) is dropped and the error is raised by the next
  :meth:`flush`, so the user learns of it once, where it can be handled.
* **flush() waits, with a deadline.** It returns when everything queued before it was sent; if the
  server stays unreachable past ``flush_timeout`` it raises that error, keeping the values queued.

Nothing here imports MLflow: the sender is a callable, so the queue is tested on its own.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence

Row = tuple[str, str, float, int, int]  # run id, key, value, timestamp (ms), step
Send = Callable[[str, Sequence[Row]], None]
Classify = Callable[[BaseException], bool]  # True: transient (retry)

BATCH = 1000


class MetricQueue:
    """Queue metric rows and send them in batches from a background thread.

    Args:
        send: ``send(run_id, rows)`` delivers rows of one run (raises on failure).
        is_transient: tells retryable failures from permanent ones.
        max_pending: queued rows before :meth:`put` waits for room.
        interval: seconds the sender waits for a full batch before sending a partial one.
        flush_timeout: seconds :meth:`flush` waits while sending keeps failing.
    """

    def __init__(self, send: Send, is_transient: Classify, *, max_pending: int = 100_000,
                 interval: float = 0.2, flush_timeout: float = 60.0, batch: int = BATCH):
        self._send = send
        self._is_transient = is_transient
        self.max_pending = max_pending
        self.interval = interval
        self.flush_timeout = flush_timeout
        self.batch = batch
        self._rows: collections.deque[Row] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._in_flight = 0
        self._sent = 0
        self._queued = 0
        self._failure: BaseException | None = None  # the current transient failure
        self._dropped: list[tuple[int, BaseException]] = []  # permanent failures
        self._stop = False
        self._flush_waiting = 0
        self._thread: threading.Thread | None = None

    # --- producer side ----------------------------------------------------------------------------
    def put(self, rows: Sequence[Row]) -> None:
        """Queue rows; returns at once unless ``max_pending`` rows already wait."""
        with self._cond:
            if len(self._rows) + len(rows) > self.max_pending:
                self._wait_for_room(len(rows))
            self._rows.extend(rows)
            self._queued += len(rows)
            if len(self._rows) >= self.batch:
                self._cond.notify_all()
            if self._thread is None or not self._thread.is_alive():
                self._start()

    def _wait_for_room(self, wanted: int) -> None:
        while len(self._rows) + wanted > self.max_pending and len(self._rows) > 0:
            if self._failure is not None:
                raise self._failure  # the server is down and the queue is full: say so
            self._cond.notify_all()
            self._cond.wait(0.1)

    def _start(self) -> None:
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="mldock-mlflow-metrics",
                                        daemon=True)
        self._thread.start()

    # --- sender side ------------------------------------------------------------------------------
    def _take(self) -> list[Row]:
        count = min(self.batch, len(self._rows))
        return [self._rows.popleft() for _ in range(count)]

    def _loop(self) -> None:
        backoff = 0.0
        while True:
            with self._cond:
                if backoff:  # the server failed: wait before trying again, whatever is queued
                    self._cond.wait_for(lambda: self._stop, timeout=backoff)
                deadline = time.monotonic() + self.interval
                while not self._stop and len(self._rows) < self.batch and not backoff:
                    left = deadline - time.monotonic()
                    if left <= 0 or (self._rows and self._flush_waiting):
                        break
                    self._cond.wait(left)
                if not self._rows:
                    if self._stop:
                        return
                    continue
                rows = self._take()
                self._in_flight = len(rows)
            failure = self._deliver(rows)
            backoff = 0.0 if failure is None else min(5.0, max(0.5, backoff * 2))

    def _deliver(self, rows: list[Row]) -> BaseException | None:
        """Send rows grouped by run, in order. Returns the transient failure that stopped it.

        A group the server refuses for good is dropped (and remembered for :meth:`flush`); on a
        transient failure the rows not yet sent go back to the head of the queue.
        """
        done = 0  # rows sent or dropped
        failure: BaseException | None = None
        while done < len(rows):
            run_id = rows[done][0]
            end = done
            while end < len(rows) and rows[end][0] == run_id:
                end += 1
            try:
                self._send(run_id, rows[done:end])
            except BaseException as exc:  # noqa: BLE001 - classified, kept for flush()
                if self._is_transient(exc):
                    failure = exc
                    break
                with self._cond:
                    self._dropped.append((end - done, exc))
            done = end
        with self._cond:
            self._in_flight = 0
            self._sent += done
            self._failure = failure
            if failure is not None:
                self._rows.extendleft(reversed(rows[done:]))
            self._cond.notify_all()
        return failure

    # --- waiting ----------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._rows) + self._in_flight

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every row queued so far was sent; raise what went wrong meanwhile.

        Raises the first permanent failure (its rows were dropped) once, or the current transient
        failure if sending still fails after ``timeout`` (default ``flush_timeout``) seconds.
        """
        limit = self.flush_timeout if timeout is None else timeout
        with self._cond:
            target = self._queued
            if self._sent < target and (self._thread is None or not self._thread.is_alive()):
                self._start()
            deadline = time.monotonic() + limit
            self._flush_waiting += 1
            try:
                self._cond.notify_all()
                while self._sent < target:
                    left = deadline - time.monotonic()
                    if left <= 0 and self._failure is not None:
                        failure = self._failure
                        raise failure
                    self._cond.wait(max(0.01, min(left, 0.5)) if left > 0 else 0.5)
            finally:
                self._flush_waiting -= 1
            if self._dropped:
                (count, failure), *rest = self._dropped
                dropped = count + sum(n for n, _ in rest)
                self._dropped = []
                if hasattr(failure, "message") and dropped:
                    failure.message = f"{failure.message} ({dropped} metric value(s) not saved)"
                raise failure

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the sender. Raises like :meth:`flush` (rows left are then dropped)."""
        try:
            self.flush(timeout)
        finally:
            with self._cond:
                self._stop = True
                leftover = len(self._rows)
                if leftover and self._failure is not None:
                    self._rows.clear()
                    self._queued -= leftover
                self._cond.notify_all()
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=5)
            self._thread = None
