"""Talking to one MLflow server: client settings, error mapping, experiments and run ids.

MLflow's client takes its timeout, retries and basic-auth credentials from environment variables
only, so :func:`apply_client_settings` puts the ``[tracking.mlflow]`` options there (for this
process). Every call goes through :meth:`MlflowConnection.call`, which probes the server once (a
stopped server is one quick line, not a minute of retries) and turns MLflow's exceptions into
mldock's errors.

Run ids: mldock shows MLflow's own run ids. MLflow cannot take an id from its caller, so an id
given to ``create_run`` is kept in the ``mldock.run_id`` tag and resolved through it; a unique
prefix of either kind of id is accepted too (like git).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from mldock.errors import NotFoundError, UsageError
from mlflow.entities import RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mldock_mlflow import encoding as enc
from mldock_mlflow.config import MlflowOptions
from mldock_mlflow.errors import ExperimentDeletedError, probe, translate
from mldock_mlflow.uris import http_uri

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
MLFLOW_ID = re.compile(r"^[0-9a-f]{32}$")
PER_BATCH = 100  # params or tags per log_batch request
RUNS_HINT = "see 'mldock runs list' for the runs of this project"


def apply_client_settings(options: MlflowOptions) -> None:
    """Hand timeout, retries and credentials to MLflow's client, which reads them from the env.

    Options written in the config win over the environment; defaults only fill in what the
    environment leaves unset. Credentials are copied from the variables the config names into
    ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` of this process (never printed or stored).
    """
    explicit = options.model_fields_set
    for field, variable in (("request_timeout", "MLFLOW_HTTP_REQUEST_TIMEOUT"),
                            ("max_retries", "MLFLOW_HTTP_REQUEST_MAX_RETRIES")):
        if field in explicit or variable not in os.environ:
            os.environ[variable] = str(getattr(options, field))
    # MLflow prints "View run … at: URL" to stdout when a run ends; mldock's stdout is for
    # results (``mldock train`` prints the run id there), so that is off unless asked for.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if options.username is not None:
        os.environ["MLFLOW_TRACKING_USERNAME"] = options.username.value() or ""
    if options.password is not None:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = options.password.value() or ""


class MlflowConnection:
    """MLflow's client for one server, with mldock's error mapping and id/experiment lookups.

    Args:
        uri: the tracking URI.
        options: ``[tracking.mlflow]``; defaults when ``None``.
    """

    def __init__(self, uri: str, options: MlflowOptions | None = None):
        self.options = options or MlflowOptions()
        self.url = http_uri(uri)
        self.uri = uri
        apply_client_settings(self.options)
        self.user = os.environ.get("MLFLOW_TRACKING_USERNAME") or None
        self.client = MlflowClient(tracking_uri=self.url, registry_uri=self.url)
        self._ids: dict[str, str] = {}  # mldock id -> MLflow run id
        self._experiments: dict[str, str] = {}  # name -> id
        self._probed = False

    # --- plumbing ---------------------------------------------------------------------------------
    def ready(self) -> None:
        """Probe the server once, so "not running" is one quick clear line."""
        if not self._probed:
            probe(self.url, min(5.0, float(self.options.request_timeout)))
            self._probed = True

    @contextmanager
    def call(self, action: str, missing: str | None = None) -> Iterator[None]:
        """Run MLflow calls doing ``action``; their failures become mldock errors naming it.

        ``missing`` is the NotFoundError message for MLflow's ``RESOURCE_DOES_NOT_EXIST``.
        """
        self.ready()
        try:
            yield
        except MlflowException as exc:
            raise translate(exc, url=self.url, action=action, user=self.user,
                            missing=missing) from None
        except OSError as exc:
            raise translate(exc, url=self.url, action=action, user=self.user) from None

    def experiment_name(self, project: str) -> str:
        return self.options.experiment or project

    def experiment_id(self, name: str, *, create: bool) -> str | None:
        if name in self._experiments:
            return self._experiments[name]
        with self.call(f"reading experiment {name!r}"):
            experiment = self.client.get_experiment_by_name(name)
            if experiment is None and create:
                try:
                    self.client.create_experiment(name)
                except MlflowException as exc:
                    if exc.error_code != "RESOURCE_ALREADY_EXISTS":  # created meanwhile: fine
                        raise
                experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            return None
        if experiment.lifecycle_stage != "active":
            raise ExperimentDeletedError(
                f"MLflow experiment {name!r} on {self.url} is deleted",
                hint="restore it in the MLflow UI or choose another experiment name"
                     " ([tracking.mlflow] experiment)")
        self._experiments[name] = experiment.experiment_id
        return experiment.experiment_id

    def active_experiment_ids(self) -> list[str]:
        with self.call("listing experiments"):
            return [e.experiment_id for e in self.client.search_experiments(
                view_type=ViewType.ACTIVE_ONLY, max_results=1000)]

    def search(self, experiment_ids: list[str], filter_string: str, limit: int) -> list[Any]:
        if not experiment_ids:
            return []
        with self.call("searching runs"):
            return list(self.client.search_runs(experiment_ids, filter_string,
                                                max_results=limit,
                                                order_by=["attributes.start_time DESC"]))

    def resolve(self, run_id: str) -> str:
        """MLflow's id of the run mldock calls ``run_id`` (full id, chosen id, or unique prefix)."""
        if run_id in self._ids:
            return self._ids[run_id]
        missing = f"no run {run_id!r} on MLflow server {self.url}"
        if not isinstance(run_id, str) or not RUN_ID.match(run_id):
            raise NotFoundError(missing, hint=RUNS_HINT)
        if MLFLOW_ID.match(run_id):
            try:
                with self.call(f"reading run {run_id}", missing=missing):
                    self.client.get_run(run_id)
                self._ids[run_id] = run_id
                return run_id
            except NotFoundError:
                pass  # perhaps an id given to create_run that looks like MLflow's
        experiments = self.active_experiment_ids()
        tagged = self.search(experiments, f"tags.`{enc.RUN_ID_TAG}` = '{run_id}'", 2)
        if tagged:
            self._ids[run_id] = tagged[0].info.run_id
            return tagged[0].info.run_id
        # LIKE treats '_' as a wildcard: keep only true prefixes
        matches = {r.info.run_id for r in self.search(
            experiments, f"attributes.run_id LIKE '{run_id}%'", 11)
            if r.info.run_id.startswith(run_id)}
        matches |= {r.info.run_id for r in self.search(
            experiments, f"tags.`{enc.RUN_ID_TAG}` LIKE '{run_id}%'", 11)
            if r.data.tags.get(enc.RUN_ID_TAG, "").startswith(run_id)}
        if len(matches) > 1:
            raise UsageError(f"run id prefix {run_id!r} is ambiguous ({len(matches)} runs match)",
                             hint="give more characters of the id")
        if not matches:
            raise NotFoundError(missing, hint=RUNS_HINT)
        return matches.pop()

    def log_batch(self, run: str, action: str, **entities: Sequence[Any]) -> None:
        with self.call(action, missing=f"no run {run!r} on MLflow server {self.url}"):
            self.client.log_batch(run, synchronous=True, **entities)

    def put_tags(self, run: str, tags: Mapping[str, str], action: str) -> None:
        items = [RunTag(k, v) for k, v in tags.items()]
        for start in range(0, len(items), PER_BATCH):
            self.log_batch(run, action, tags=items[start:start + PER_BATCH])

    def experiment_name_of(self, experiment_id: str) -> str:
        for name, known in self._experiments.items():
            if known == experiment_id:
                return name
        with self.call(f"reading experiment {experiment_id}"):
            experiment = self.client.get_experiment(experiment_id)
        if experiment.lifecycle_stage == "active":  # cached: list_runs asks once per run
            self._experiments[experiment.name] = experiment_id
        return experiment.name
