"""What the page can ask, answered from one project's tracker, stores and deployers.

The HTTP layer (:mod:`mldock.ui.server`) only parses requests and writes answers; everything the
page shows is assembled here, so it can be tested without a socket.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mldock.errors import NotFoundError
from mldock.interfaces.tracking import RunRecord, Tracker, store_root
from mldock.ui.curves import DEFAULT_POINTS, CurveReader
from mldock.ui.details import read_log, run_details
from mldock.ui.endpoints import EndpointsView
from mldock.ui.query import RunsQuery
from mldock.ui.runs import RunsIndex, summary

MAX_MODEL_FILES = 1000


class UiApp:
    """The page's data.

    Args:
        tracker: the project's tracker.
        project: whose runs are shown (``None``: all of the tracker's).
        title: the project's name as the page shows it.
        log_path: where a run's training log is on this machine (``None`` if it is not).
        open_store: a store rooted at a URI (the model's files are listed through it).
        endpoints: the endpoints table (``None``: the page says none are configured).
    """

    def __init__(self, tracker: Tracker, project: str | None, *, title: str,
                 log_path: Callable[[str], Path | None] = lambda run_id: None,
                 open_store: Callable[[str], Any] | None = None,
                 endpoints: EndpointsView | None = None, max_age_s: float = 1.0):
        self.tracker = tracker
        self.project = project
        self.title = title
        self.log_path = log_path
        self.open_store = open_store
        self.endpoints_view = endpoints
        self.index = RunsIndex(tracker, project, max_age_s=max_age_s)
        self.curves = CurveReader(tracker)

    def run(self, run_id: str) -> RunRecord:
        """The run, or NotFoundError (also for a run of another project)."""
        run = self.tracker.get_run(run_id)
        if self.project is not None and run.project != self.project:
            raise NotFoundError(f"run {run_id} belongs to project {run.project!r}, not"
                                f" {self.project!r}")
        return run

    def runs_page(self, query: RunsQuery) -> dict[str, Any]:
        return self.index.page(query)

    def details(self, run_id: str) -> dict[str, Any]:
        run = self.run(run_id)
        return run_details(run, log_path=self.log_path(run.id), model_files=self.model_files)

    def metrics(self, run_id: str, *, keys: list[str], low: float | None = None,
                high: float | None = None, max_points: int = DEFAULT_POINTS) -> dict[str, Any]:
        run = self.run(run_id)
        unknown = [k for k in keys if k not in run.metrics]
        if unknown:
            raise NotFoundError(f"run {run.id} has no metric {unknown[0]!r}")
        return {"run": run.id, "status": run.status.value,
                "series": self.curves.series(run.id, keys, finished=run.status.is_terminal,
                                             low=low, high=high, max_points=max_points)}

    def log(self, run_id: str, offset: int) -> dict[str, Any]:
        run = self.run(run_id)
        path = self.log_path(run.id)
        if path is None or not path.is_file():
            raise NotFoundError(f"no log for run {run.id} on this machine (cloud runs keep"
                                " theirs on their platform)")
        return {**read_log(path, offset), "status": run.status.value}

    def compare(self, run_ids: list[str]) -> dict[str, Any]:
        runs = [self.run(i) for i in dict.fromkeys(run_ids)]
        params = sorted({k for r in runs for k in r.params})
        metrics = sorted({k for r in runs for k in r.metrics})
        differing = [k for k in params
                     if len({repr(r.params.get(k, "\0missing")) for r in runs}) > 1]
        return {"runs": [summary(r) for r in runs], "params": params, "metrics": metrics,
                "differing_params": differing}

    def compare_ids(self, run_ids: list[str]) -> list[str]:
        """The full ids of the runs to compare (each must exist)."""
        return [self.run(i).id for i in dict.fromkeys(run_ids)]

    def endpoints(self) -> list[dict[str, Any]]:
        return [] if self.endpoints_view is None else self.endpoints_view.rows()

    def model_files(self, run: RunRecord) -> list[dict[str, Any]] | None:
        """The files of the run's stored model tree (path, size, sha256), or None when the model
        is not a tree in a content-addressed store (a platform's ``model.tar.gz``)."""
        from mldock.cas import ContentAddressedStore

        trees = [a for a in run.artifacts if a.kind == "tree"]
        if not trees or self.open_store is None:
            return None
        artifact = trees[0]
        root = store_root(artifact)
        if root is None:
            return None
        store = self.open_store(root)
        if not isinstance(store, ContentAddressedStore):
            return None
        files = store.tree_files(artifact.key)
        return [{"path": path, "size": entry["size"], "sha256": entry["sha256"]}
                for path, entry in sorted(files.items())[:MAX_MODEL_FILES]]
