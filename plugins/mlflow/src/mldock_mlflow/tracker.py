"""The :class:`~mldock.interfaces.Tracker` on an MLflow tracking server.

* **Experiments.** A project's runs go to the experiment named ``[tracking.mlflow] experiment``
  (default: the project's name), created on first use. Each run carries ``mldock.project``, so
  several projects may share one experiment.
* **Run ids.** mldock shows MLflow's own run ids. MLflow cannot take an id from its caller, so an id
  passed to :meth:`create_run` is kept in the ``mldock.run_id`` tag and resolved through it; a
  unique prefix of either kind of id is accepted too (like git).
* **Metrics never block training.** :meth:`log_metrics` hands values to a
  :class:`~mldock_mlflow.batching.MetricQueue`, which sends them with ``log_batch`` from a
  background thread; :meth:`flush` waits for them.
* **Everything else is synchronous** (params, tags, lineage, artifacts, finishing): rare calls whose
  failure the caller must see.
* Lineage, artifact references and errors are ``mldock.*`` tags (see :mod:`.encoding`); a local
  artifact is uploaded to MLflow's artifact store as well (see :mod:`.artifacts`).
"""

from __future__ import annotations

import atexit
import json
import sys
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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
from mlflow.entities import Metric as MlflowMetric
from mlflow.entities import Param
from mlflow.exceptions import MlflowException

from mldock_mlflow import encoding as enc
from mldock_mlflow.artifacts import OpenStore, upload
from mldock_mlflow.batching import MetricQueue, Row
from mldock_mlflow.config import MlflowOptions
from mldock_mlflow.connection import PER_BATCH, RUN_ID, MlflowConnection
from mldock_mlflow.errors import is_transient, translate
from mldock_mlflow.uris import container_environment, container_extra_hosts

TO_MLFLOW = {RunStatus.RUNNING: "RUNNING", RunStatus.FINISHED: "FINISHED",
             RunStatus.FAILED: "FAILED", RunStatus.KILLED: "KILLED"}
FROM_MLFLOW = {"RUNNING": RunStatus.RUNNING, "SCHEDULED": RunStatus.RUNNING,
               "FINISHED": RunStatus.FINISHED, "FAILED": RunStatus.FAILED,
               "KILLED": RunStatus.KILLED}
_OPEN: weakref.WeakSet[MlflowTracker] = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for tracker in list(_OPEN):
        try:
            tracker.close()
        except Exception as exc:  # noqa: BLE001 - exiting: report, never raise
            print(f"warning: mldock could not send buffered metrics to MLflow: {exc}",
                  file=sys.stderr)


class MlflowTracker(MlflowConnection, Tracker):
    """Runs tracked on the MLflow server at ``uri`` (``mlflow+http(s)://…`` or ``http(s)://…``).

    Args:
        uri: the tracking URI.
        options: ``[tracking.mlflow]``; defaults when ``None``.
        project: the session's project, whose experiment :meth:`check` reports on.
        open_store: ``open_store(uri)`` opens the artifact store a ref points into (the session
            gives it); without it only plain local files and folders are uploaded.
    """

    def __init__(self, uri: str, options: MlflowOptions | None = None, *,
                 project: str | None = None, open_store: OpenStore | None = None):
        super().__init__(uri, options)
        self.project = project
        self.open_store = open_store
        self._metric_names: set[str] = set()  # names known to be valid
        self._queue = MetricQueue(self._send_metrics, lambda exc: getattr(exc, "transient", False),
                                  max_pending=self.options.max_pending_metrics,
                                  flush_timeout=float(self.options.request_timeout))
        _OPEN.add(self)

    def __repr__(self) -> str:
        return f"MlflowTracker({self.url!r})"

    # --- runs -------------------------------------------------------------------------------------
    def create_run(self, project: str, *, tags: Mapping[str, str] | None = None,
                   run_id: str | None = None) -> str:
        name = self.experiment_name(project)
        experiment_id = self.experiment_id(name, create=True)
        if experiment_id is None:  # created just now, unless the server lost it meanwhile
            raise NotFoundError(f"MLflow experiment {name!r} could not be created on {self.url}",
                                hint="check the tracking server's logs, then retry")
        all_tags = {str(k): str(v) for k, v in (tags or {}).items()}
        all_tags[enc.PROJECT_TAG] = project
        if run_id is not None:
            if not RUN_ID.match(run_id):
                raise UsageError(f"invalid run id {run_id!r}: use up to 128 letters, digits,"
                                 " '.', '_', ':' or '-'")
            try:
                self.resolve(run_id)
            except NotFoundError:
                pass
            else:
                raise UsageError(f"a run with id {run_id!r} already exists on {self.url}")
            all_tags[enc.RUN_ID_TAG] = run_id
        try:
            with self.call(f"creating a run in experiment {name!r}"):
                run = self.client.create_run(experiment_id, tags=all_tags)
        except MldockError:
            self._experiments.pop(name, None)  # deleted since it was cached? then say that
            self.experiment_id(name, create=False)
            raise
        mlflow_id = run.info.run_id
        self._ids[mlflow_id] = mlflow_id
        if run_id is not None:
            self._ids[run_id] = mlflow_id
        return run_id or mlflow_id

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        run = self.resolve(run_id)
        encoded, literal = enc.encode_params(params)
        for key, value in encoded.items():
            if len(value) > enc.MAX_PARAM_VALUE:
                raise UsageError(f"param {key!r} is {len(value)} characters long; MLflow keeps"
                                 f" at most {enc.MAX_PARAM_VALUE}", hint="log it as an artifact")
        if literal:
            with self.call(f"reading run {run_id}"):
                old = self.client.get_run(run).data.tags.get(enc.STRING_PARAMS_TAG)
            merged = sorted(set(json.loads(old or "[]")) | set(literal))
            self.put_tags(run, {enc.STRING_PARAMS_TAG: json.dumps(merged)},
                          f"logging params of run {run_id}")
        items = [Param(k, v) for k, v in encoded.items()]
        for start in range(0, len(items), PER_BATCH):
            self.log_batch(run, f"logging params of run {run_id}",
                           params=items[start:start + PER_BATCH])

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        run = self.resolve(run_id)
        clean = {str(k): str(v) for k, v in tags.items()}
        for key, value in clean.items():
            if len(value) > enc.MAX_TAG_VALUE:
                raise UsageError(f"tag {key!r} is {len(value)} characters long; MLflow keeps at"
                                 f" most {enc.MAX_TAG_VALUE}")
        self.put_tags(run, clean, f"setting tags of run {run_id}")

    def log_artifact(self, run_id: str, artifact: ArtifactRef) -> None:
        run = self.resolve(run_id)
        path = enc.mlflow_artifact_path(artifact.key)
        uploaded = False
        if self.options.upload_artifacts:
            with self.call(f"uploading artifact {artifact.key!r} of run {run_id}"):
                uploaded = upload(self.client, run, artifact, path, self.open_store)
        tags = {enc.artifact_tag_key(artifact.key):
                enc.artifact_tag_value(artifact, time.time_ns(), path if uploaded else None)}
        if uploaded and artifact.kind == "tree" and path.rsplit("/", 1)[-1] == "model":
            tags[enc.MODEL_PATH_TAG] = path
        self.put_tags(run, tags, f"recording artifact {artifact.key!r} of run {run_id}")

    def set_lineage(self, run_id: str, lineage: Lineage) -> None:
        run = self.resolve(run_id)
        tags, big_config = enc.lineage_tags(lineage)
        with self.call(f"setting lineage of run {run_id}"):
            if big_config is not None:
                self.client.log_text(run, big_config, enc.CONFIG_ARTIFACT)
            current = self.client.get_run(run).data.tags
            for stale in enc.lineage_keys(current) - set(tags):
                self.client.delete_tag(run, stale)
        self.put_tags(run, tags, f"setting lineage of run {run_id}")

    def finish_run(self, run_id: str, status: RunStatus | str, *, error: str | None = None
                   ) -> None:
        status = terminal_status(run_id, status)
        run = self.resolve(run_id)
        unsent: MldockError | None = None
        try:
            self.flush()
        except MldockError as exc:  # end the run anyway; report the lost metrics after
            unsent = exc
        with self.call(f"finishing run {run_id}", missing=f"no run {run_id!r} on {self.url}"):
            current = self.client.get_run(run)
            if FROM_MLFLOW.get(current.info.status, RunStatus.RUNNING).is_terminal:
                return  # the first terminal status stays
            if error:
                self.client.set_tag(run, enc.ERROR_TAG, enc.tail(error))
            self.client.set_terminated(run, TO_MLFLOW[status])
        if unsent is not None:
            raise unsent
        if status is RunStatus.FINISHED and self.options.register_model:
            model_path = current.data.tags.get(enc.MODEL_PATH_TAG)
            if model_path:
                from mldock_mlflow.registry import register_quietly

                register_quietly(self, run, model_path)

    # --- metrics ----------------------------------------------------------------------------------
    def log_metrics(self, run_id: str, metrics: Iterable[Metric]) -> None:
        """Queue values for the background sender: returns without waiting for the server."""
        run = self._ids.get(run_id) or self.resolve(run_id)
        now = int(time.time() * 1000)
        try:
            rows: list[Row] = [(run, str(m.key), float(m.value),
                                int(m.timestamp * 1000) if m.timestamp else now, int(m.step))
                               for m in metrics]
        except (TypeError, ValueError) as exc:
            raise UsageError(f"run {run_id!r}: metric values must be numbers ({exc})") from None
        for row in rows:
            if row[1] not in self._metric_names:  # checked here: the sender would drop them
                if not enc.valid_name(row[1]):
                    raise UsageError(f"invalid metric name {row[1]!r} for MLflow",
                                     hint="use letters, digits, '_', '-', '.', ':', ' ' and '/'"
                                          " (at most 250 characters)")
                self._metric_names.add(row[1])
        if rows:
            self._queue.put(rows)

    def _send_metrics(self, run: str, rows: Sequence[Row]) -> None:
        """The queue's sender: one ``log_batch`` of rows of one run."""
        batch = [MlflowMetric(key, value, timestamp, step)
                 for _, key, value, timestamp, step in rows]
        try:
            self.client.log_batch(run, metrics=batch, synchronous=True)
        except (MlflowException, OSError) as exc:
            error = translate(exc, url=self.url, user=self.user,
                              action=f"logging {len(batch)} metric value(s) of run {run}",
                              missing=f"run {run} no longer exists on {self.url}")
            error.transient = is_transient(exc)  # type: ignore[attr-defined]
            raise error from None

    def flush(self) -> None:
        """Wait until every queued metric reached the server (raises what went wrong)."""
        self._queue.flush()

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        self.flush()
        run = self.resolve(run_id)
        with self.call(f"reading metric {key!r} of run {run_id}"):
            history = self.client.get_metric_history(run, key)
        values = [Metric(m.key, m.value, m.step, m.timestamp / 1000) for m in history]
        return sorted(values, key=lambda m: (m.step, m.timestamp))

    # --- reading ----------------------------------------------------------------------------------
    def get_run(self, run_id: str) -> RunRecord:
        """One run by MLflow id, by an id given to create_run, or by a unique prefix of either."""
        self.flush()
        run = self.resolve(run_id)
        with self.call(f"reading run {run_id}", missing=f"no run {run_id!r} on {self.url}"):
            return self._record(self.client.get_run(run))

    def list_runs(self, project: str | None = None, *, limit: int = 50) -> list[RunRecord]:
        self.flush()
        if project is None:
            runs = self.search(self.active_experiment_ids(), "", limit)
        else:
            name = self.experiment_name(project)
            experiment_id = self.experiment_id(name, create=False)
            shared = name != project
            where = f"tags.`{enc.PROJECT_TAG}` = '{project}'" if shared else ""
            runs = self.search([experiment_id] if experiment_id else [], where, limit)
        return [self._record(run) for run in runs]

    def _record(self, run: Any) -> RunRecord:
        info, data = run.info, run.data
        tags = dict(data.tags)
        config = None
        if tags.get(enc.CONFIG_ARTIFACT_TAG):
            with self.call(f"reading the config of run {info.run_id}"):
                text = self.client.download_artifacts(info.run_id, tags[enc.CONFIG_ARTIFACT_TAG])
            with open(text, encoding="utf-8") as handle:
                config = json.load(handle)
        project = tags.get(enc.PROJECT_TAG)
        if project is None:
            project = self.experiment_name_of(info.experiment_id)
        return RunRecord(
            id=tags.get(enc.RUN_ID_TAG) or info.run_id, project=project,
            status=FROM_MLFLOW.get(info.status, RunStatus.RUNNING),
            started_at=(info.start_time or 0) / 1000,
            ended_at=info.end_time / 1000 if info.end_time else None,
            params=enc.decode_params(data.params, tags), metrics=dict(sorted(data.metrics.items())),
            tags=enc.visible_tags(tags), artifacts=[ref for ref, _ in enc.decode_artifacts(tags)],
            lineage=enc.decode_lineage(tags, config), error=tags.get(enc.ERROR_TAG))

    # --- containers, lifecycle, health ------------------------------------------------------------
    def mlflow_run_id(self, run_id: str) -> str:
        """MLflow's id of an mldock run (they differ only for ids given to create_run)."""
        return self.resolve(run_id)

    def container_environment(self, run_id: str | None = None, project: str | None = None
                              ) -> dict[str, str]:
        """Env vars for a training container whose code calls ``mlflow`` itself (see uris.py)."""
        return container_environment(
            self.uri,
            experiment=self.experiment_name(project) if project else self.options.experiment,
            run_id=self.resolve(run_id) if run_id else None)

    def container_extra_hosts(self) -> dict[str, str]:
        return container_extra_hosts(self.uri)

    def close(self) -> None:
        """Send what is queued and stop the sender thread."""
        _OPEN.discard(self)
        self._queue.close()

    def check(self) -> list[HealthCheck]:
        """For ``mldock doctor``: server reachable, credentials accepted, experiment usable."""
        try:
            self.ready()
        except MldockError as exc:
            return [HealthCheck("mlflow server", False, exc.message, exc.hint or "")]
        checks = [HealthCheck("mlflow server", True, f"{self.url} answers")]
        name = self.options.experiment or self.project
        try:
            with self.call("listing experiments"):
                self.client.search_experiments(max_results=1)
            checks.append(HealthCheck("mlflow credentials", True,
                                      f"accepted (user {self.user})" if self.user else
                                      "no authentication needed"))
            if name:
                found = self.experiment_id(name, create=False)
                checks.append(HealthCheck("mlflow experiment", True,
                                          f"{name!r} is active" if found else
                                          f"{name!r} will be created on the first run"))
        except MldockError as exc:
            checks.append(HealthCheck("mlflow access", False, exc.message, exc.hint or ""))
        return checks
