"""The runs table: one snapshot of the project's runs, filtered, sorted and cut into pages.

The tracker interface lists runs but cannot filter on a param or sort by a metric, so the page
keeps a snapshot of the project's runs and does that here. A snapshot is re-read at most once per
``max_age_s`` (live updates poll it), and only when someone asks: 10,000 runs read from SQLite in a
fraction of a second, and a page of 50 rows goes to the browser, never the whole list.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from mldock.interfaces.tracking import RunRecord, Tracker
from mldock.ui.query import RunsQuery

MAX_RUNS = 100_000  # what one snapshot reads; a project with more shows its newest
KEY_COLUMNS = 6  # params and metrics shown as columns: the most common ones in the result


class RunsIndex:
    """The project's runs as the page sees them.

    Args:
        tracker: where the runs are.
        project: the project whose runs are shown (``None``: every project of the tracker).
        max_age_s: how old a snapshot may be before a request re-reads it.
        clock: time source (tests).
    """

    def __init__(self, tracker: Tracker, project: str | None, *, max_age_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.tracker = tracker
        self.project = project
        self.max_age_s = max_age_s
        self.clock = clock
        self._runs: list[RunRecord] = []
        self._read_at = -1e18
        self._lock = threading.Lock()

    def runs(self) -> list[RunRecord]:
        """The snapshot, re-read when older than ``max_age_s``."""
        with self._lock:
            if self.clock() - self._read_at >= self.max_age_s:
                self._runs = self.tracker.list_runs(self.project, limit=MAX_RUNS)
                self._read_at = self.clock()
            return self._runs

    def page(self, query: RunsQuery) -> dict[str, Any]:
        """One page of the table as JSON-ready data: rows, totals and the key columns."""
        runs = self.runs()
        kept = [run for run in runs if _matches(run, query)]
        kept.sort(key=_sort_key(query.sort), reverse=query.descending)
        if query.sort.startswith(("param:", "metric:")):  # runs without the value go last
            kept.sort(key=lambda run: _value(run, query.sort) is None)
        start = (query.page - 1) * query.per_page
        rows = kept[start:start + query.per_page]
        return {"total": len(kept), "all": len(runs), "page": query.page,
                "per_page": query.per_page,
                "pages": max(1, -(-len(kept) // query.per_page)),
                "running": sum(1 for run in runs if not run.status.is_terminal),
                "columns": {"params": _common(kept, "params"),
                            "metrics": _common(kept, "metrics")},
                "runs": [summary(run) for run in rows]}


def summary(run: RunRecord) -> dict[str, Any]:
    """A run's row: what the table shows and sorts by."""
    return {"id": run.id, "status": run.status.value, "started_at": run.started_at,
            "ended_at": run.ended_at, "duration": duration(run),
            "platform": run.lineage.platform or "local", "image": run.lineage.image,
            "params": run.params, "metrics": _finite(run.metrics), "tags": run.tags,
            "error": run.error}


def duration(run: RunRecord, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from start to end (to now while it runs)."""
    if not run.started_at:
        return None
    end = run.ended_at if run.ended_at is not None else (None if run.status.is_terminal
                                                         else now())
    return None if end is None else max(0.0, end - run.started_at)


def _finite(metrics: dict[str, float]) -> dict[str, float | None]:
    """NaN and infinities are not JSON: they travel as null."""
    return {k: (v if v == v and v not in (float("inf"), float("-inf")) else None)
            for k, v in metrics.items()}


def _matches(run: RunRecord, query: RunsQuery) -> bool:
    if query.statuses and run.status.value not in query.statuses:
        return False
    for condition in query.conditions:
        source = run.params if condition.kind == "param" else run.metrics
        if not condition.holds(source.get(condition.key)):
            return False
    if query.text:
        haystack = " ".join([run.id, run.lineage.image or "", run.lineage.platform or "",
                             *(f"{k}={v}" for k, v in run.tags.items())]).lower()
        if query.text not in haystack:
            return False
    return True


def _value(run: RunRecord, sort: str) -> Any:
    kind, _, key = sort.partition(":")
    return (run.params if kind == "param" else run.metrics).get(key)


def _sort_key(sort: str) -> Callable[[RunRecord], Any]:
    if sort == "started":
        return lambda run: run.started_at or 0.0
    if sort == "ended":
        return lambda run: run.ended_at or 0.0
    if sort == "duration":
        return lambda run: duration(run) or 0.0
    if sort in ("status", "id"):
        return lambda run: run.status.value if sort == "status" else run.id

    def by_value(run: RunRecord) -> tuple[int, float, str]:
        value = _value(run, sort)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
            return (0, float(value), "")
        return (1, 0.0, "" if value is None else str(value))

    return by_value


def _common(runs: list[RunRecord], attribute: str) -> list[str]:
    """The keys most runs of the result have (ties by name), for the table's columns."""
    counts: Counter[str] = Counter()
    for run in runs[:2000]:  # enough to see which keys matter
        counts.update(getattr(run, attribute).keys())
    return [key for key, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][
        :KEY_COLUMNS]
