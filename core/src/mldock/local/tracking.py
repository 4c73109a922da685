"""The local tracker: runs, params, metrics, tags, artifacts and lineage in one SQLite file.

Why it is built this way:

* **WAL mode + busy timeout + ``BEGIN IMMEDIATE``.** Readers never block the writer and writers
  queue instead of failing, so a training run, the host tailing its metrics and ``mldock runs list``
  can all use the file at once, from several processes.
* **Buffered metrics.** :meth:`SqliteTracker.log_metrics` only appends to a list in memory. The list
  is written with one ``executemany`` in one transaction when it holds :attr:`batch_size` values,
  when :attr:`flush_interval` seconds have passed (a daemon thread checks), on :meth:`flush`, on
  :meth:`close` and at interpreter exit. A training loop never waits for the disk.
* **One connection per process**, shared by its threads under a lock; a forked child notices the new
  pid and opens its own (and drops the buffer it inherited, so nothing is written twice).
* NaN metrics are kept: SQLite stores NaN as NULL, which reads back as ``nan``.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import secrets
import sqlite3
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Self

from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.interfaces import (
    ArtifactRef,
    HealthCheck,
    Lineage,
    Metric,
    RunRecord,
    RunStatus,
    Tracker,
    terminal_status,
)
from mldock.local.diskspace import is_no_space, no_space_error

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, project TEXT NOT NULL, status TEXT NOT NULL,
    started_at REAL NOT NULL, ended_at REAL, error TEXT, lineage TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started_at);
CREATE INDEX IF NOT EXISTS runs_by_project ON runs (project, started_at);
CREATE TABLE IF NOT EXISTS params (
    run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key));
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL, key TEXT NOT NULL, value REAL, step INTEGER NOT NULL,
    timestamp REAL NOT NULL);
CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics (run_id, key, step, timestamp);
CREATE TABLE IF NOT EXISTS tags (
    run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key));
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL, key TEXT NOT NULL, uri TEXT NOT NULL, sha256 TEXT NOT NULL,
    size INTEGER NOT NULL, kind TEXT NOT NULL, PRIMARY KEY (run_id, key));
"""
ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase: sorts like time
RUNS_HINT = "see 'mldock runs list' for the runs of this project"
_OPEN: weakref.WeakSet[SqliteTracker] = weakref.WeakSet()


_ID_LOCK = threading.Lock()
_LAST_ID: list[int] = [0, 0]  # (millis, tail) of the last id this process made


def _encode(value: int, width: int) -> str:
    return "".join(ID_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(width)))


def new_run_id() -> str:
    """A 14-character id: 9 characters of milliseconds since 1970 (sortable) + 5 random ones.

    Monotonic within a process (as ULIDs are): an id made in the same millisecond as the last one
    takes the next tail instead of a fresh random one, so one process never repeats an id; across
    processes the 25 random bits per millisecond keep collisions unlikely.
    """
    with _ID_LOCK:
        millis = int(time.time() * 1000)
        last_millis, last_tail = _LAST_ID
        if millis <= last_millis and last_tail < 32 ** 5 - 1:
            millis, tail = last_millis, last_tail + 1
        else:
            millis, tail = max(millis, last_millis + (millis <= last_millis)), secrets.randbelow(
                32 ** 4)  # room above it for the ids that follow within the millisecond
        _LAST_ID[:] = [millis, tail]
    return _encode(millis, 9) + _encode(tail, 5)


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@atexit.register
def _flush_all_at_exit() -> None:
    for tracker in list(_OPEN):
        try:
            tracker.flush()
        except Exception as exc:  # noqa: BLE001 - exiting: report, never raise
            print(f"warning: mldock could not save buffered metrics: {exc}", file=sys.stderr)


def _flush_loop(ref: weakref.ref[SqliteTracker], stop: threading.Event, wake: threading.Event,
                interval: float) -> None:
    """The background writer: flushes every ``interval`` seconds, or at once when woken."""
    warned = False
    while True:
        wake.wait(interval)
        wake.clear()
        tracker = ref()
        if tracker is None or stop.is_set():
            return
        try:
            tracker.flush()
        except Exception as exc:  # noqa: BLE001 - kept in the buffer; retried next tick
            if not warned:
                print(f"warning: mldock could not save metrics yet: {exc}", file=sys.stderr)
                warned = True
        del tracker


_LIST_RUNS = "SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?"
_LIST_PROJECT_RUNS = ("SELECT * FROM runs WHERE project = ?"
                      " ORDER BY started_at DESC, rowid DESC LIMIT ?")

class SqliteTracker(Tracker):
    """Runs tracked in a SQLite database file.

    Args:
        path: the database file; it and its folder are created on first use.
        batch_size: buffered metric values that trigger a write.
        flush_interval: seconds after which buffered metrics are written anyway.
        busy_timeout: seconds to wait for another process's write before giving up.
    """

    def __init__(self, path: str | os.PathLike[str], *, batch_size: int = 200,
                 flush_interval: float = 0.5, busy_timeout: float = 30.0):
        self.path = Path(os.path.abspath(os.fspath(path)))
        self.uri = f"sqlite:///{self.path}"
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.busy_timeout = busy_timeout
        self._pid = -1
        self._reset_process_state()
        _OPEN.add(self)

    @classmethod
    def from_uri(cls, uri: str, *, base_dir: str | os.PathLike[str] | None = None,
                 **options: Any) -> SqliteTracker:
        """``sqlite:///rel/path.db`` (relative to ``base_dir``) or ``sqlite:////abs/path.db``."""
        if not uri.startswith("sqlite:///") or len(uri) == len("sqlite:///"):
            raise UsageError(f"invalid tracking URI {uri!r}",
                             hint="use 'sqlite:///relative/path.db' or 'sqlite:////abs/path.db'")
        path = Path(uri[len("sqlite:///"):]).expanduser()
        if not path.is_absolute():
            path = Path(base_dir if base_dir is not None else Path.cwd()) / path
        return cls(path, **options)

    def __repr__(self) -> str:
        return f"SqliteTracker({str(self.path)!r})"

    # --- connection and transactions ------------------------------------------------------------
    def _reset_process_state(self) -> None:
        """Fresh locks, connection and buffer: at start, and in a forked child."""
        self._pid = os.getpid()
        self._lock = threading.RLock()  # the connection
        self._write_lock = threading.Lock()  # one metric flush at a time, in order
        self._buf_lock = threading.Lock()  # the buffer; held only for an append or a swap
        self._buffer: list[tuple[str, str, float | None, int, float]] = []
        self._conn: sqlite3.Connection | None = None
        self._known_runs: set[str] = set()
        self._stop, self._wake = threading.Event(), threading.Event()
        self._flusher: threading.Thread | None = None

    def _check_process(self) -> None:
        if self._pid != os.getpid():
            self._reset_process_state()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            for _ in range(50):  # switching to WAL needs a moment alone with the file
                try:
                    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                    break
                except sqlite3.OperationalError as exc:
                    if is_no_space(exc, self.path.parent):  # waiting frees no space
                        raise self._no_space() from exc
                    time.sleep(0.1)
            else:
                mode = "?"
            if str(mode).lower() != "wal":
                raise MldockError(f"cannot switch {self.path} to WAL mode (got {mode!r})",
                                  hint="put the database on a local disk, not a network share")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate(conn)
        except sqlite3.DatabaseError as exc:
            if is_no_space(exc, self.path.parent):
                raise self._no_space() from exc
            raise MldockError(f"cannot open the run database {self.path}: {exc}",
                              hint="check the path in [tracking] uri; move a damaged file"
                                   " aside to start a new one") from exc
        except OSError as exc:
            if is_no_space(exc):
                raise self._no_space() from exc
            raise MldockError(f"cannot create the run database {self.path}: {exc.strerror}",
                              hint="check the folder's permissions") from exc
        self._conn = conn
        return conn

    def _no_space(self) -> MldockError:
        return no_space_error(self.path.parent, setting="[tracking] uri")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # one statement at a time: executescript() would commit our transaction
            for statement in filter(str.strip, SCHEMA.split(";")):
                conn.execute(statement)
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
            if row[0] is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] > SCHEMA_VERSION:
                raise MldockError(f"{self.path} was written by a newer mldock (schema {row[0]})",
                                  hint="upgrade mldock-core to read it")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction: ``BEGIN IMMEDIATE`` for writes, a consistent snapshot for reads.

        A full disk (``SQLITE_FULL``, or an I/O error with no space left) is the one-line
        "no space left" error, not a raw ``sqlite3.OperationalError``.
        """
        try:
            with self._transaction(write) as conn:
                yield conn
        except sqlite3.OperationalError as exc:
            if is_no_space(exc, self.path.parent):
                raise self._no_space() from exc
            raise

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Connection]:
        self._check_process()
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.OperationalError as exc:
                raise MldockError(f"the run database {self.path} is busy: {exc}",
                                  hint="another mldock process holds it; try again") from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.OperationalError):  # SQLite may have rolled back already
                    conn.execute("ROLLBACK")
                raise

    # --- runs -------------------------------------------------------------------------------------
    def create_run(self, project: str, *, tags: Mapping[str, str] | None = None,
                   run_id: str | None = None) -> str:
        if run_id is not None and (not run_id or len(run_id) > 128
                                   or any(c.isspace() or c == "/" for c in run_id)):
            raise UsageError(f"invalid run id {run_id!r}: use up to 128 characters, no spaces or /")
        for _ in range(5):
            new_id = run_id or new_run_id()
            try:
                with self._tx() as conn:
                    conn.execute("INSERT INTO runs (id, project, status, started_at, lineage)"
                                 " VALUES (?, ?, ?, ?, '{}')",
                                 (new_id, project, RunStatus.RUNNING.value, time.time()))
                    conn.executemany("INSERT INTO tags VALUES (?, ?, ?)",
                                     [(new_id, k, str(v)) for k, v in (tags or {}).items()])
            except sqlite3.IntegrityError:
                if run_id is not None:
                    raise UsageError(f"a run with id {run_id!r} already exists") from None
                continue
            self._known_runs.add(new_id)
            return new_id
        raise MldockError("could not allocate a unique run id")  # pragma: no cover

    def _require(self, conn: sqlite3.Connection, run_id: str) -> None:
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise NotFoundError(f"no run {run_id!r} in {self.path}", hint=RUNS_HINT)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        with self._tx() as conn:
            self._require(conn, run_id)
            conn.executemany("INSERT OR REPLACE INTO params VALUES (?, ?, ?)",
                             [(run_id, str(k), _dump(v)) for k, v in params.items()])

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        with self._tx() as conn:
            self._require(conn, run_id)
            conn.executemany("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)",
                             [(run_id, str(k), str(v)) for k, v in tags.items()])

    def log_artifact(self, run_id: str, artifact: ArtifactRef) -> None:
        with self._tx() as conn:
            self._require(conn, run_id)
            conn.execute("INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?, ?)",
                         (run_id, artifact.key, artifact.uri, artifact.sha256, artifact.size,
                          artifact.kind))

    def set_lineage(self, run_id: str, lineage: Lineage) -> None:
        with self._tx() as conn:
            self._require(conn, run_id)
            conn.execute("UPDATE runs SET lineage = ? WHERE id = ?",
                         (_dump(lineage.to_dict()), run_id))

    def finish_run(self, run_id: str, status: RunStatus | str, *, error: str | None = None
                   ) -> None:
        status = terminal_status(run_id, status)
        self.flush()
        with self._tx() as conn:
            self._require(conn, run_id)
            conn.execute("UPDATE runs SET status = ?, ended_at = ?, error = ?"
                         " WHERE id = ? AND status = ?",  # the first terminal status stays
                         (status.value, time.time(), error, run_id, RunStatus.RUNNING.value))

    # --- metrics ----------------------------------------------------------------------------------
    def log_metrics(self, run_id: str, metrics: Iterable[Metric]) -> None:
        """Buffer metric values; a background thread writes them in batches. NaN and inf are kept.

        Costs a list append: the first call for a run checks that it exists, later ones never
        touch the database. A ``timestamp`` of 0 means "now".
        """
        self._check_process()
        if run_id not in self._known_runs:
            with self._tx(write=False) as conn:
                self._require(conn, run_id)
            self._known_runs.add(run_id)
        now = time.time()
        try:
            rows = [(run_id, str(m.key), None if math.isnan(v := float(m.value)) else v,
                     int(m.step), float(m.timestamp) or now) for m in metrics]
        except (TypeError, ValueError) as exc:
            raise UsageError(f"run {run_id!r}: metric values must be numbers ({exc})") from None
        with self._buf_lock:
            self._buffer.extend(rows)
            due = len(self._buffer) >= self.batch_size
        if self._flusher is None or not self._flusher.is_alive():
            self._flusher = threading.Thread(
                target=_flush_loop, name="mldock-metrics-flush", daemon=True,
                args=(weakref.ref(self), self._stop, self._wake, self.flush_interval))
            self._flusher.start()
        if due:
            self._wake.set()

    def flush(self) -> None:
        """Write buffered metrics with one ``executemany`` in one transaction.

        On failure (e.g. the file stayed locked past ``busy_timeout``) they go back to the buffer.
        """
        self._check_process()
        with self._write_lock:
            with self._buf_lock:
                rows, self._buffer = self._buffer, []
            if not rows:
                return
            try:
                with self._tx() as conn:
                    conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", rows)
            except BaseException:
                with self._buf_lock:
                    self._buffer[:0] = rows
                raise

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        self.flush()
        with self._tx(write=False) as conn:
            run_id = self._resolve(conn, run_id)
            rows = conn.execute("SELECT key, value, step, timestamp FROM metrics WHERE run_id = ?"
                                " AND key = ? ORDER BY step, timestamp, rowid",
                                (run_id, key)).fetchall()
        return [Metric(k, math.nan if v is None else v, s, t) for k, v, s, t in rows]

    # --- reading ----------------------------------------------------------------------------------
    def resolve_run_id(self, prefix: str) -> str:
        """The full id of the run whose id is ``prefix`` or starts with it (like git)."""
        with self._tx(write=False) as conn:
            return self._resolve(conn, prefix)

    def _resolve(self, conn: sqlite3.Connection, prefix: str) -> str:
        if not prefix:
            raise UsageError("empty run id", hint=RUNS_HINT)
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (prefix,)).fetchone():
            return prefix
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        ids = [r[0] for r in conn.execute("SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\'"
                                          " ORDER BY id LIMIT 11", (escaped + "%",))]
        ids = [i for i in ids if i.startswith(prefix)]  # LIKE ignores ASCII case
        if not ids:
            raise NotFoundError(f"no run {prefix!r} in {self.path}", hint=RUNS_HINT)
        if len(ids) > 1:
            shown = ", ".join(ids[:10]) + (", …" if len(ids) > 10 else "")
            raise UsageError(f"run id prefix {prefix!r} is ambiguous: {shown}",
                             hint="give more characters of the id")
        return ids[0]

    def get_run(self, run_id: str) -> RunRecord:
        """One run by id or unique id prefix; NotFoundError if none, UsageError if ambiguous."""
        self.flush()
        with self._tx(write=False) as conn:
            full = self._resolve(conn, run_id)
            rows = conn.execute("SELECT * FROM runs WHERE id = ?", (full,)).fetchall()
            return self._records(conn, rows)[0]

    def list_runs(self, project: str | None = None, *, limit: int = 50) -> list[RunRecord]:
        self.flush()
        with self._tx(write=False) as conn:
            args: tuple[str | int, ...]
            if project is None:
                query, args = _LIST_RUNS, (int(limit),)
            else:
                query, args = _LIST_PROJECT_RUNS, (project, int(limit))
            rows = conn.execute(query, args).fetchall()
            return self._records(conn, rows)

    def _records(self, conn: sqlite3.Connection, rows: list[tuple]) -> list[RunRecord]:
        """RunRecords for ``runs`` rows, with their details fetched in one query per table."""
        ids = [row[0] for row in rows]
        marks = ",".join("?" * len(ids))

        def select(sql: str) -> list[tuple]:
            return conn.execute(sql.format(marks=marks), ids).fetchall() if ids else []

        params: dict[str, dict[str, Any]] = {i: {} for i in ids}
        for run, key, value in select("SELECT * FROM params WHERE run_id IN ({marks})"):
            params[run][key] = json.loads(value)
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        for run, key, value in select("SELECT * FROM tags WHERE run_id IN ({marks})"):
            tags[run][key] = value
        artifacts: dict[str, list[ArtifactRef]] = {i: [] for i in ids}
        for run, *fields in select("SELECT run_id, key, uri, sha256, size, kind FROM artifacts"
                                   " WHERE run_id IN ({marks}) ORDER BY rowid"):
            artifacts[run].append(ArtifactRef(*fields))
        latest: dict[str, dict[str, float]] = {i: {} for i in ids}
        for run, key, value in select(
                "SELECT run_id, key, value FROM (SELECT run_id, key, value, row_number() OVER"
                " (PARTITION BY run_id, key ORDER BY step DESC, timestamp DESC, rowid DESC) AS n"
                " FROM metrics WHERE run_id IN ({marks})) WHERE n = 1"):
            latest[run][key] = math.nan if value is None else value
        return [RunRecord(id=i, project=project, status=RunStatus(status), started_at=started,
                          ended_at=ended, params=params[i], metrics=dict(sorted(latest[i].items())),
                          tags=tags[i], artifacts=artifacts[i], error=error,
                          lineage=Lineage.from_dict(json.loads(lineage or "{}")))
                for i, project, status, started, ended, error, lineage in rows]

    # --- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        """Write buffered metrics, stop the flush thread and close the connection."""
        self._check_process()
        self._stop.set()
        self._wake.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join(timeout=5)
        self.flush()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self._stop, self._wake = threading.Event(), threading.Event()
        self._flusher = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def check(self) -> list[HealthCheck]:
        try:
            with self._tx(write=False) as conn:
                count = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        except MldockError as exc:
            return [HealthCheck("run tracking", False, exc.message, exc.hint or "")]
        return [HealthCheck("run tracking", True, f"{self.path} ({mode}, {count} run(s))")]
