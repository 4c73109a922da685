"""A project session: the resolved config and the backends it selects, each built on first use.

Commands and core services go through a :class:`Session` instead of calling factories themselves,
so every backend is constructed one way (record → FactoryContext → factory) and only the backends a
command touches are ever imported.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mldock.records import FactoryContext

if TYPE_CHECKING:  # pragma: no cover
    from mldock.config import ResolvedConfig
    from mldock.host.registry import Registry
    from mldock.interfaces import ArtifactStore, Builder, Deployer, Tracker

STATE_DIR = ".mldock"


class Session:
    """One command's view of a project."""

    def __init__(self, config: "ResolvedConfig", registry: "Registry"):
        self.config = config
        self.registry = registry

    @classmethod
    def open(cls, env: str | None = None) -> "Session":
        """The session of the project the CLI runs in (``--env`` and ``--config`` applied)."""
        from mldock.cli.state import load_project_config
        from mldock.host import get_host

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
    def _build(self, concern: str, record: Any, uri: str | None = None) -> Any:
        context = FactoryContext(options=self.config.options(concern, record.name),
                                 project_dir=self.project_dir, uri=uri, env=self.config.env,
                                 config=self.config)
        return record.build(context)

    @cached_property
    def builder_name(self) -> str:
        return self.config.model.build.builder

    @cached_property
    def builder(self) -> "Builder":
        return self._build("builder", self.registry.get("builder", self.builder_name))

    @cached_property
    def storage(self) -> "ArtifactStore":
        uri = self.config.storage_uri
        return self._build("storage", self.registry.by_scheme("storage", uri), uri)

    @cached_property
    def tracker(self) -> "Tracker":
        model = self.config.model.tracking
        uri = self.config.tracking_uri
        record = (self.registry.get("tracker", model.backend) if model.backend
                  else self.registry.by_scheme("tracker", uri))
        return self._build("tracker", record, uri)

    @cached_property
    def deployer_name(self) -> str:
        return self.config.model.deploy.deployer

    @cached_property
    def deployer_record(self) -> Any:
        return self.registry.get("deployer", self.deployer_name)

    @property
    def remote(self) -> bool:
        """Whether the deployer runs images elsewhere (it needs them pushed and data staged)."""
        return "registry" in self.deployer_record.capabilities

    @cached_property
    def deployer(self) -> "Deployer":
        return self._build("deployer", self.deployer_record)

    def storage_for(self, uri: str) -> "ArtifactStore":
        """A store rooted at ``uri`` (data channels given as URIs), with the project's options."""
        return self._build("storage", self.registry.by_scheme("storage", uri), uri)

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        self.registry.notify(hook_name, **kwargs)

    def close(self) -> None:
        if "tracker" in self.__dict__:
            self.tracker.close()
