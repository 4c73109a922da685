"""The SQLite tracker: the conformance contract, plus WAL, several writer processes, batching,
fork safety, run ids and id prefixes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.interfaces import Metric, RunStatus
from mldock.local.tracking import ID_ALPHABET, SCHEMA_VERSION, SqliteTracker, new_run_id
from mldock.records import FactoryContext
from mldock.testing import TrackerContract, registered_record


class TestSqliteTrackerContract(TrackerContract):
    record = registered_record("tracker", "sqlite")

    @pytest.fixture
    def tracker(self, tmp_path: Path):
        """Built as mldock builds it from ``[tracking] uri`` (relative to the project folder)."""
        tracker = self.record.build(FactoryContext(uri="sqlite:///.mldock/runs.db",
                                                   project_dir=tmp_path))
        assert isinstance(tracker, SqliteTracker)
        yield tracker
        tracker.close()

    def reopen(self, tracker: SqliteTracker) -> SqliteTracker:
        return SqliteTracker(tracker.path)


@pytest.fixture
def tracker(tmp_path: Path):
    tracker = SqliteTracker(tmp_path / "runs.db")
    yield tracker
    tracker.close()


def _rows(path: Path, sql: str, *args) -> list[tuple]:
    """Read with an independent connection: what another process would see."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


# --- URIs, schema, WAL -------------------------------------------------------------------------
def test_from_uri_relative_and_absolute(tmp_path: Path) -> None:
    rel = SqliteTracker.from_uri("sqlite:///.mldock/runs.db", base_dir=tmp_path)
    assert rel.path == tmp_path / ".mldock" / "runs.db"
    absolute = SqliteTracker.from_uri(f"sqlite:///{tmp_path}/abs.db", base_dir="/elsewhere")
    assert absolute.path == tmp_path / "abs.db"
    assert not rel.path.exists(), "the constructor must not create the database"


@pytest.mark.parametrize("uri", ["sqlite://", "sqlite:///", "sqlite:runs.db", "postgres://x/y"])
def test_from_uri_rejects_bad_uris(uri: str) -> None:
    with pytest.raises(UsageError, match="tracking URI"):
        SqliteTracker.from_uri(uri)


def test_schema_and_wal(tracker: SqliteTracker) -> None:
    tracker.create_run("p")
    assert _rows(tracker.path, "PRAGMA journal_mode") == [("wal",)]
    assert _rows(tracker.path, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    tables = {r[0] for r in _rows(tracker.path, "SELECT name FROM sqlite_master WHERE"
                                                " type = 'table'")}
    assert {"runs", "params", "metrics", "tags", "artifacts", "schema_version"} <= tables


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    with SqliteTracker(tmp_path / "runs.db") as tracker:
        tracker.create_run("p")
    conn = sqlite3.connect(tmp_path / "runs.db")
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(MldockError, match="newer mldock"):
        SqliteTracker(tmp_path / "runs.db").list_runs()


def test_damaged_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "runs.db").write_bytes(b"this is not a database" * 100)
    tracker = SqliteTracker(tmp_path / "runs.db")
    with pytest.raises(MldockError, match=r"runs.db"):
        tracker.list_runs()
    assert not tracker.check()[0].ok


# --- run ids and prefixes ------------------------------------------------------------------------
def test_run_ids_are_short_sortable_and_unique() -> None:
    ids = []
    for _ in range(3):
        ids.append(new_run_id())
        time.sleep(0.003)
    assert ids == sorted(ids)
    assert all(len(i) == 14 and set(i) <= set(ID_ALPHABET) for i in ids)
    many = {new_run_id() for _ in range(20000)}
    assert len(many) == 20000


def test_get_run_by_unique_prefix(tracker: SqliteTracker) -> None:
    run_id = tracker.create_run("p")
    other = tracker.create_run("p", run_id=run_id[:-1] + ("0" if run_id[-1] != "0" else "1"))
    assert tracker.get_run(run_id).id == run_id  # an exact id always wins
    assert tracker.get_run(other).id == other
    with pytest.raises(UsageError, match="ambiguous") as caught:
        tracker.get_run(run_id[:-1])
    assert run_id in str(caught.value) and other in str(caught.value)
    unique = tracker.create_run("p", run_id="zzfeedbeef")
    assert tracker.get_run("zzfe").id == unique == tracker.resolve_run_id("zzf")


def test_prefix_wildcards_are_literal(tracker: SqliteTracker) -> None:
    tracker.create_run("p", run_id="a_b1")
    tracker.create_run("p", run_id="axb2")
    tracker.create_run("p", run_id="A%c3")
    assert tracker.get_run("a_").id == "a_b1"
    assert tracker.get_run("A%").id == "A%c3"
    with pytest.raises(NotFoundError):
        tracker.get_run("a%")


def test_unknown_run_message_names_id_and_command(tracker: SqliteTracker) -> None:
    with pytest.raises(NotFoundError) as caught:
        tracker.get_run("nosuchrun")
    assert "nosuchrun" in caught.value.message and "mldock runs list" in (caught.value.hint or "")


def test_explicit_run_ids_are_validated(tracker: SqliteTracker) -> None:
    tracker.create_run("p", run_id="job-1")
    with pytest.raises(UsageError, match="already exists"):
        tracker.create_run("p", run_id="job-1")
    with pytest.raises(UsageError):
        tracker.create_run("p", run_id="has space")


# --- metrics: batching, liveness, safety ---------------------------------------------------------
def test_metrics_are_buffered_then_written_by_the_background_thread(tmp_path: Path) -> None:
    tracker = SqliteTracker(tmp_path / "runs.db", flush_interval=0.2)
    run_id = tracker.create_run("p")
    tracker.log_metrics(run_id, [Metric("loss", 1.0, 0)])
    count = "SELECT count(*) FROM metrics"
    assert _rows(tracker.path, count) == [(0,)], "log_metrics must not write synchronously"
    deadline = time.monotonic() + 10
    while _rows(tracker.path, count) == [(0,)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _rows(tracker.path, count) == [(1,)], "metrics must become visible without flush()"
    tracker.close()


def test_full_batch_is_written_promptly(tmp_path: Path) -> None:
    tracker = SqliteTracker(tmp_path / "runs.db", batch_size=50, flush_interval=60)
    run_id = tracker.create_run("p")
    tracker.log_metrics(run_id, [Metric("m", float(i), i) for i in range(50)])
    deadline = time.monotonic() + 10
    while _rows(tracker.path, "SELECT count(*) FROM metrics") != [(50,)]:
        assert time.monotonic() < deadline, "a full batch was not written"
        time.sleep(0.02)
    tracker.close()


def test_log_metrics_is_cheap(tracker: SqliteTracker) -> None:
    run_id = tracker.create_run("p")
    started = time.perf_counter()
    for step in range(20000):
        tracker.log_metrics(run_id, [Metric("loss", 1.0 / (step + 1), step)])
    elapsed = time.perf_counter() - started
    tracker.flush()
    assert len(tracker.metric_history(run_id, "loss")) == 20000
    assert elapsed < 2.0, f"20,000 log_metrics calls took {elapsed:.2f}s"


def test_log_metrics_checks_run_and_values(tracker: SqliteTracker) -> None:
    with pytest.raises(NotFoundError):
        tracker.log_metrics("nosuchrun", [Metric("loss", 1.0)])
    run_id = tracker.create_run("p")
    with pytest.raises(UsageError, match="numbers"):
        tracker.log_metrics(run_id, [Metric("loss", "high")])  # type: ignore[arg-type]


def test_finish_run_writes_buffered_metrics(tmp_path: Path) -> None:
    tracker = SqliteTracker(tmp_path / "runs.db", flush_interval=60)
    run_id = tracker.create_run("p")
    tracker.log_metrics(run_id, [Metric("acc", 0.9, 3)])
    tracker.finish_run(run_id, RunStatus.FINISHED)
    assert _rows(tracker.path, "SELECT value, step FROM metrics") == [(0.9, 3)]
    with pytest.raises(UsageError):
        tracker.finish_run(run_id, "running")
    tracker.close()


EXIT_WITHOUT_CLOSE = (
    "import sys; from mldock.local.tracking import SqliteTracker; from mldock.interfaces import"
    " Metric\nt = SqliteTracker(sys.argv[1], flush_interval=60)\n"
    "t.log_metrics(sys.argv[2], [Metric('loss', 0.5, s) for s in range(7)])\n")


def test_buffer_written_at_interpreter_exit(tracker: SqliteTracker) -> None:
    run_id = tracker.create_run("p")
    subprocess.run([sys.executable, "-c", EXIT_WITHOUT_CLOSE, str(tracker.path), run_id],
                   check=True, timeout=60)
    assert len(tracker.metric_history(run_id, "loss")) == 7


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_forked_child_does_not_write_the_parents_buffer(tmp_path: Path) -> None:
    tracker = SqliteTracker(tmp_path / "runs.db", flush_interval=60)
    run_id = tracker.create_run("p")
    tracker.log_metrics(run_id, [Metric("m", 1.0, s) for s in range(3)])  # buffered in parent
    pid = os.fork()
    if pid == 0:  # the child: its own connection, its own (empty) buffer
        code = 1
        try:
            tracker.log_metrics(run_id, [Metric("m", 2.0, s) for s in range(10, 12)])
            tracker.close()
            code = 0
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0
    tracker.flush()
    assert sorted(m.step for m in tracker.metric_history(run_id, "m")) == [0, 1, 2, 10, 11]
    tracker.close()


WORKER = """
import sys, time
from pathlib import Path
from mldock.interfaces import Metric
from mldock.local.tracking import SqliteTracker

path, run_id, index, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
tracker = SqliteTracker(path)
while not go.exists():
    time.sleep(0.001)
own = tracker.create_run("workers", tags={"worker": str(index)})
for step in range(1000):
    tracker.log_metrics(run_id, [Metric(f"worker{index}", float(step), step)])
    tracker.log_metrics(own, [Metric("loss", 1.0 / (step + 1), step)])
tracker.finish_run(own, "finished")
tracker.close()
"""


def test_eight_processes_lose_no_metric(tracker: SqliteTracker, tmp_path: Path) -> None:
    """8 processes x 1,000 metrics into one run (and 1,000 each into their own), all at once."""
    shared = tracker.create_run("shared")
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(tracker.path), shared, str(i),
                               str(go)], stderr=subprocess.PIPE) for i in range(8)]
    time.sleep(0.5)
    go.touch()
    while any(p.poll() is None for p in procs):  # read while they write: never an error
        tracker.get_run(shared)
        time.sleep(0.01)
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    record = tracker.get_run(shared)
    assert record.metrics == {f"worker{i}": 999.0 for i in range(8)}
    for i in range(8):
        assert [m.step for m in tracker.metric_history(shared, f"worker{i}")] == list(range(1000))
    runs = tracker.list_runs("workers")
    assert len(runs) == 8 and len({r.id for r in runs}) == 8
    assert sorted(r.tags["worker"] for r in runs) == [str(i) for i in range(8)]
    assert all(r.status is RunStatus.FINISHED and r.metrics["loss"] == 0.001 for r in runs)
    assert _rows(tracker.path, "SELECT count(*) FROM metrics") == [(16000,)]
