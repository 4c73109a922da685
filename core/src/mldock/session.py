"""A project session: the resolved config and the backends it selects, each built on first use.

Commands and core services go through a :class:`Session` instead of calling factories themselves,
so every backend is constructed one way (record → FactoryContext → factory) and only the backends a
command touches are ever imported.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mldock.concerns import selection
from mldock.records import (
    BackendRecord,
    BuilderRecord,
    DeployerRecord,
    FactoryContext,
    StorageRecord,
    TrackerRecord,
)

if TYPE_CHECKING:  # pragma: no cover
    from mldock.config import ResolvedConfig
    from mldock.host.registry import Registry
    from mldock.interfaces import ArtifactStore, Builder, Deployer, Tracker

__all__ = ["STATE_DIR", "Session"]

STATE_DIR = ".mldock"


class Session:
    """One command's view of a project: the only place that turns a record into a backend."""

    def __init__(self, config: ResolvedConfig, registry: Registry):
        self.config = config
        self.registry = registry

    @classmethod
    def open(cls, env: str | None = None) -> Session:
        """The session of the project the CLI runs in (``--env`` and ``--config`` applied)."""
        from mldock.host import get_host
        from mldock.invocation import load_project_config

        return cls(load_project_config(env), get_host().registry)

    # --- project facts ------------------------------------------------------------------------
    @property
    def project(self) -> str:
        return self.config.model.project.name

    @property
    def project_dir(self) -> Path:
        return self.config.project_dir

    @property
    def state_dir(self) -> Path:
        """``.mldock/`` in the project: runs' working trees, logs, caches (never in the image)."""
        return self.project_dir / STATE_DIR

    def run_dir(self, run_id: str) -> Path:
        return self.state_dir / "runs" / run_id

    @property
    def endpoint_name(self) -> str:
        return self.config.model.deploy.endpoint or self.project

    # --- backends -----------------------------------------------------------------------------
    def context(self, record: BackendRecord, uri: str | None = None) -> FactoryContext:
        """The facts a backend's factory receives (its options, the project's names and URIs)."""
        from mldock.imaging.request import image_repository

        config = self.config
        return FactoryContext(
            options=config.options(record.concern, record.name), project=self.project,
            project_dir=self.project_dir, uri=uri, storage_uri=config.storage_uri,
            tracking_uri=config.tracking_uri, env=config.env, image=image_repository(config),
            platform=config.model.build.platform, config_file=config.path.name,
            open_store=self.storage_for)

    def build(self, record: BackendRecord, uri: str | None = None) -> Any:
        """Build ``record``'s backend for this project: every backend is made here, one way."""
        return record.build(self.context(record, uri))

    def selected(self, concern: str) -> BackendRecord:
        """The record of ``concern`` the config selects (by name, or by its URI's scheme)."""
        return self.registry.select(selection(concern, self.config.model))

    def uri_of(self, concern: str) -> str | None:
        """The URI a backend of ``concern`` is rooted at (storage and tracker), else ``None``."""
        return {"storage": self.config.storage_uri,
                "tracker": self.config.tracking_uri}.get(concern)

    def backend(self, concern: str) -> Any:
        """The backend the config selects for ``concern``, built now (the properties cache)."""
        return self.build(self.selected(concern), self.uri_of(concern))

    @cached_property
    def builder_record(self) -> BuilderRecord:
        return self.registry.get("builder", self.builder_name)

    @cached_property
    def builder_name(self) -> str:
        return self.config.model.build.builder

    @cached_property
    def builder(self) -> Builder:
        backend: Builder = self.build(self.builder_record)
        return backend

    @cached_property
    def storage_record(self) -> StorageRecord:
        return self.registry.by_scheme("storage", self.config.storage_uri)

    @cached_property
    def storage(self) -> ArtifactStore:
        backend: ArtifactStore = self.build(self.storage_record, self.config.storage_uri)
        return backend

    @cached_property
    def tracker_record(self) -> TrackerRecord:
        record = self.selected("tracker")
        if not isinstance(record, TrackerRecord):  # the registry accepts only these for trackers
            raise TypeError(f"tracker {record.name!r} is a {type(record).__name__}")
        return record

    @cached_property
    def tracker(self) -> Tracker:
        backend: Tracker = self.build(self.tracker_record, self.config.tracking_uri)
        return backend

    @cached_property
    def deployer_name(self) -> str:
        return self.config.model.deploy.deployer

    @cached_property
    def deployer_record(self) -> DeployerRecord:
        return self.registry.get("deployer", self.deployer_name)

    @property
    def remote(self) -> bool:
        """Whether the deployer runs images elsewhere (it needs them pushed and data staged)."""
        return "registry" in self.deployer_record.capabilities

    @cached_property
    def deployer(self) -> Deployer:
        backend: Deployer = self.build(self.deployer_record)
        return backend

    def storage_for(self, uri: str) -> ArtifactStore:
        """A store rooted at ``uri`` (data channels given as URIs), with the project's options."""
        backend: ArtifactStore = self.build(self.registry.by_scheme("storage", uri), uri)
        return backend

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        self.registry.notify(hook_name, **kwargs)

    def close(self) -> None:
        if "tracker" in self.__dict__:
            self.tracker.close()
