"""Run tracking: params, metrics, tags, artifacts and lineage of every run."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mldock.interfaces.common import HealthCheck
from mldock.interfaces.storage import ArtifactRef


class RunStatus(StrEnum):
    """Where a run is in its life. ``killed`` means stopped by a signal or by the user."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING


def terminal_status(run_id: str, status: RunStatus | str) -> RunStatus:
    """``status`` as a terminal :class:`RunStatus` (as ``finish_run`` takes it) or a usage error."""
    from mldock.errors import UsageError

    try:
        status = RunStatus(status)
    except ValueError:
        raise UsageError(f"unknown run status {status!r}: use finished, failed or killed") from None
    if not status.is_terminal:
        raise UsageError(f"cannot finish run {run_id!r} with status 'running'")
    return status


@dataclass(frozen=True)
class Metric:
    """One metric value. ``timestamp`` is seconds since the epoch."""

    key: str
    value: float
    step: int = 0
    timestamp: float = 0.0


@dataclass
class Lineage:
    """Where a run's model came from: enough to rebuild it or explain it.

    Attributes:
        git_commit: the project's commit, if it is a git checkout.
        git_dirty: whether the work tree had uncommitted changes.
        image: the image tag the run used.
        image_id: the local image id (``sha256:…``).
        image_digest: the registry digest once pushed (``repo@sha256:…``).
        config: the resolved project config the run used.
        inputs: input channel name -> ``{"uri": …, "sha256": …}``.
        platform: ``local``, ``sagemaker``, ``vertex``, ``azureml``.
        job_id: the platform's job id.
    """

    git_commit: str | None = None
    git_dirty: bool | None = None
    image: str | None = None
    image_id: str | None = None
    image_digest: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    platform: str | None = None
    job_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "image": self.image,
            "image_id": self.image_id,
            "image_digest": self.image_digest,
            "config": dict(self.config),
            "inputs": {k: dict(v) for k, v in self.inputs.items()},
            "platform": self.platform,
            "job_id": self.job_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lineage:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def store_root(artifact: ArtifactRef) -> str | None:
    """The URI of the store holding ``artifact``, when its recorded URI is ``<store>/<key>``.

    Stores record an artifact as their root URI plus its key, but content-addressed stores (the
    local folder, S3) keep blobs and references, not a folder at that address: only the root is
    a real location. ``None`` for a platform's own file (kind ``remote``) or an unknown form.
    """
    uri, key = artifact.uri.rstrip("/"), artifact.key.strip("/")
    if artifact.kind == "remote" or not key or not uri.endswith("/" + key):
        return None
    return uri[: -len(key) - 1] or None


def artifact_location(artifact: ArtifactRef) -> dict[str, Any]:
    """An artifact as users see it: only locations that exist.

    A stored artifact is named by ``store`` (the store's root URI, which exists) and ``key``
    (meaningful to the store; ``mldock runs export`` writes it out as a folder). ``uri`` is given
    only when it names the object itself: a platform's ``model.tar.gz``, or a tracker's own form.
    """
    store = store_root(artifact)
    return {"key": artifact.key, "kind": artifact.kind, "sha256": artifact.sha256,
            "size": artifact.size, "store": store, "uri": None if store else artifact.uri}


@dataclass
class RunRecord:
    """A run as read back from a tracker."""

    id: str
    project: str
    status: RunStatus
    started_at: float
    ended_at: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[ArtifactRef] = field(default_factory=list)
    lineage: Lineage = field(default_factory=Lineage)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "status": self.status.value,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
            "artifacts": [artifact_location(a) for a in self.artifacts],
            "lineage": self.lineage.to_dict(),
            "error": self.error,
        }


class Tracker(ABC):
    """Records runs. Metric logging may be buffered; :meth:`flush` makes it durable.

    Contract (checked by :class:`mldock.testing.TrackerContract`): a created run is ``running``;
    finishing it sets a terminal status once; metrics keep every (step, value); lineage and
    artifacts read back as written; runs list newest first.

    Capabilities: ``live-metrics``, ``artifacts``, ``concurrent-writers``.
    """

    @abstractmethod
    def create_run(self, project: str, *, tags: Mapping[str, str] | None = None,
                   run_id: str | None = None) -> str:
        """Start a run (status ``running``) and return its id."""

    @abstractmethod
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Record hyperparameters and other inputs of the run."""

    @abstractmethod
    def log_metrics(self, run_id: str, metrics: Iterable[Metric]) -> None:
        """Record metric values; may be buffered until :meth:`flush`."""

    @abstractmethod
    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set or replace tags."""

    @abstractmethod
    def log_artifact(self, run_id: str, artifact: ArtifactRef) -> None:
        """Attach a stored artifact to the run."""

    @abstractmethod
    def set_lineage(self, run_id: str, lineage: Lineage) -> None:
        """Record (or replace) the run's lineage."""

    @abstractmethod
    def finish_run(self, run_id: str, status: RunStatus, *, error: str | None = None) -> None:
        """Mark the run ended with a terminal status and an optional error text."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunRecord:
        """Read one run; raises :class:`mldock.errors.NotFoundError` if there is none."""

    @abstractmethod
    def list_runs(self, project: str | None = None, *, limit: int = 50) -> list[RunRecord]:
        """Runs, newest first."""

    @abstractmethod
    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every logged value of one metric, in step order."""

    def container_environment(self, run_id: str, *, project: str | None = None) -> dict[str, str]:
        """Environment for a local training container, so code inside that calls the tracking
        service directly (e.g. ``mlflow.log_metric``) lands in the same run. Default: none.
        Never include credentials."""
        return {}

    def container_extra_hosts(self) -> dict[str, str]:
        """``--add-host`` entries the training container needs to reach the tracking service
        (e.g. ``{"host.docker.internal": "host-gateway"}``). Default: none."""
        return {}

    def flush(self) -> None:
        """Make buffered writes durable. Default: nothing buffered."""
        return

    def close(self) -> None:
        """Flush and release resources."""
        self.flush()

    def check(self) -> list[HealthCheck]:
        """Health checks for ``mldock doctor``. Default: none."""
        return []
