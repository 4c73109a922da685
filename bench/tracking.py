"""Tracking: what logging a metric costs a training loop, and whether concurrent writers lose any.

1. **MLflow.** 10,000 metric values logged one call at a time from a loop, to one local MLflow
   tracking server (``mlflow server``, 1 worker, SQLite store, on 127.0.0.1):

   * through mldock's MLflow tracker (``mldock-mlflow``): ``log_metrics`` queues, a background
     thread sends batches with ``log_batch``; measured: the loop alone, and the loop + ``flush()``
     (until every value is on the server);
   * plain synchronous ``MlflowClient.log_metric`` (what ``mlflow.log_metric`` does per call).

   Both runs are read back from the server to check that all 10,000 values arrived.
2. **SQLite.** mldock's built-in tracker (``mldock.local.tracking.SqliteTracker``) with 8 processes
   logging to one database file at once, each to its own run; every value is counted afterwards.

Goals (issue "Plugin mldock-mlflow"): mldock's cost per metric in the loop ≤ 0.05× the synchronous
client's; no value lost by the 8 SQLite writers.

    uv run python bench/tracking.py [--metrics 10000] [--sync-metrics 2000] [--processes 8]

The synchronous client costs ~10-30 ms a call, so its default count is 2,000 (a minute or so):
costs are compared per value; pass --sync-metrics 10000 for the full side-by-side.

Needs the workspace with ``mldock-mlflow`` installed; the ``mlflow`` server comes from the workspace
when its test extra is installed, else from its own environment under bench/.venvs (first use).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contextlib

from _peers import peer_venv

SERVER_START_TIMEOUT = 180.0


# --- an MLflow server on 127.0.0.1 --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_mlflow(root: Path) -> tuple[subprocess.Popen, str]:
    """``mlflow server`` (1 worker, SQLite, served artifacts) on a free port: (proc, url)."""
    mlflow = Path(sys.executable).parent / "mlflow"
    if not mlflow.exists():
        mlflow = peer_venv("mlflow", "mlflow") / "mlflow"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    root.mkdir(parents=True, exist_ok=True)
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [str(mlflow), "server", "--workers", "1", "--backend-store-uri",
         f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"mlflow server exited: {(root / 'server.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.3)
    stop(process)
    sys.exit(f"mlflow server not ready after {SERVER_START_TIMEOUT:.0f} s")


def stop(process: subprocess.Popen) -> None:
    """Stop the server we started (by PID), then its own process group's leftover workers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


# --- 1. mldock's MLflow tracker against the synchronous client ----------------------------------


def bench_mlflow(url: str, metrics: int, sync_metrics: int) -> dict[str, float]:
    from mldock.interfaces import Metric
    from mldock_mlflow.tracker import MlflowTracker
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    tracker = MlflowTracker("mlflow+" + url)
    run_id = tracker.create_run("bench-mldock")  # also warms the connection
    start = time.perf_counter()
    for step in range(metrics):
        tracker.log_metrics(run_id, [Metric("loss", 1.0 / (step + 1), step)])
    loop = time.perf_counter() - start
    tracker.flush()
    flushed = time.perf_counter() - start
    tracker.close()
    arrived = len(client.get_metric_history(run_id, "loss"))

    experiment = client.get_experiment_by_name("bench-plain") or client.get_experiment(
        client.create_experiment("bench-plain"))
    plain_run = client.create_run(experiment.experiment_id).info.run_id
    client.log_metric(plain_run, "warmup", 0.0)  # same warm connection as mldock had
    start = time.perf_counter()
    for step in range(sync_metrics):
        client.log_metric(plain_run, "loss", 1.0 / (step + 1), step=step)
    plain = time.perf_counter() - start
    plain_arrived = len(client.get_metric_history(plain_run, "loss"))
    client.set_terminated(plain_run)
    return {"loop": loop, "flushed": flushed, "arrived": arrived, "plain": plain,
            "plain_arrived": plain_arrived}


# --- 2. the SQLite tracker with 8 writer processes ----------------------------------------------


def _writer(path: str, index: int, count: int, go, results) -> None:
    from mldock.interfaces import Metric
    from mldock.local.tracking import SqliteTracker

    tracker = SqliteTracker(path)
    run_id = tracker.create_run("bench-sqlite", tags={"writer": str(index)})
    go.wait()
    start = time.perf_counter()
    for step in range(count):
        tracker.log_metrics(run_id, [Metric("loss", 1.0 / (step + 1), step)])
    loop = time.perf_counter() - start
    tracker.close()  # flushes
    results.put((index, run_id, loop, time.perf_counter() - start))


def bench_sqlite(root: Path, processes: int, count: int) -> None:
    path = str(root / "runs.db")
    ctx = multiprocessing.get_context("spawn")
    go, results = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=_writer, args=(path, i, count, go, results))
               for i in range(processes)]
    for worker in workers:
        worker.start()
    time.sleep(2.0)  # let every process import mldock and create its run
    start = time.perf_counter()
    go.set()
    done = [results.get(timeout=600) for _ in workers]
    wall = time.perf_counter() - start
    for worker in workers:
        worker.join(timeout=60)
    with sqlite3.connect(path) as conn:
        counts = dict(conn.execute("SELECT run_id, count(*) FROM metrics GROUP BY run_id"))
    print(f"\nSQLite tracker, {processes} processes x {count:,} values, one file (WAL)")
    print(f"{'writer':>6} {'loop s':>8} {'to flushed s':>13} {'values found':>13}")
    total = 0
    for index, run_id, loop, flushed in sorted(done):
        found = counts.get(run_id, 0)
        total += found
        print(f"{index:>6} {loop:>8.3f} {flushed:>13.3f} {found:>13,}")
    expected = processes * count
    print(f"values found {total:,} of {expected:,} ({expected - total:,} lost);"
          f" {total / wall:,.0f} values/s over {wall:.2f} s (start to the last flush)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, default=10_000)
    parser.add_argument("--sync-metrics", type=int, default=2_000,
                        help="values for the synchronous client (fewer is faster; per-value cost"
                             " is compared)")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--sqlite-metrics", type=int, default=10_000, help="per process")
    parser.add_argument("--no-mlflow", action="store_true", help="only the SQLite part")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="mldock-bench-tracking-"))
    if not args.no_mlflow:
        process, url = start_mlflow(root / "mlflow")
        try:
            r = bench_mlflow(url, args.metrics, args.sync_metrics)
        finally:
            stop(process)
        per = r["loop"] / args.metrics
        per_flushed = r["flushed"] / args.metrics
        per_plain = r["plain"] / args.sync_metrics
        print(f"MLflow server (1 worker, SQLite) at {url}")
        print(f"{'client':<40} {'values':>7} {'seconds':>8} {'us/value':>9} {'arrived':>8}")
        print(f"{'mldock tracker: loop (log_metrics)':<40} {args.metrics:>7,} {r['loop']:>8.3f}"
              f" {per * 1e6:>9.1f} {'':>8}")
        print(f"{'mldock tracker: loop + flush()':<40} {args.metrics:>7,} {r['flushed']:>8.3f}"
              f" {per_flushed * 1e6:>9.1f} {r['arrived']:>8,}")
        print(f"{'MlflowClient.log_metric (synchronous)':<40} {args.sync_metrics:>7,}"
              f" {r['plain']:>8.3f} {per_plain * 1e6:>9.1f} {r['plain_arrived']:>8,}")
        print(f"\nmldock loop / synchronous client, per value   = {per / per_plain:.4f}"
              "  (goal <= 0.05)")
        print(f"mldock loop+flush / synchronous, per value     = {per_flushed / per_plain:.4f}")
    bench_sqlite(root, args.processes, args.sqlite_metrics)


if __name__ == "__main__":
    main()
