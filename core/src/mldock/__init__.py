"""mldock: build local, deploy everywhere.

The public API that plugins import lives here. Names are resolved lazily (PEP 562) so that
``import mldock`` stays cheap: the in-container runtime imports ``mldock.runtime`` and must not pay
for pluggy, pydantic or typer, and ``mldock --help`` must stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

PLUGIN_API_VERSION = 1
"""The plugin API this mldock-core speaks: the hooks, records and interfaces a plugin builds on.

A plugin declares the API it was built for with ``MLDOCK_PLUGIN_API = 1`` in the module its entry
point names; the host compares the two right after importing it and, when they differ, marks the
plugin failed with a message saying which side to upgrade, instead of letting it fail later in a
hook with an obscure ``TypeError``. Grows only on an incompatible change (a hook or record field
removed or changed in meaning); additions keep it. Defined here, not lazily, because it costs
nothing and the host reads it on every start-up.
"""

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "hookimpl": "mldock.markers",
    "hookspec": "mldock.markers",
    "PROJECT_NAME": "mldock.markers",
    "BackendRecord": "mldock.records",
    "BuilderRecord": "mldock.records",
    "StorageRecord": "mldock.records",
    "TrackerRecord": "mldock.records",
    "DeployerRecord": "mldock.records",
    "CommandRecord": "mldock.records",
    "TemplateRecord": "mldock.records",
    "FactoryContext": "mldock.records",
    "Builder": "mldock.interfaces",
    "ArtifactStore": "mldock.interfaces",
    "Tracker": "mldock.interfaces",
    "Deployer": "mldock.interfaces",
    "HealthCheck": "mldock.interfaces",
    "MldockError": "mldock.errors",
    "PluginConfig": "mldock.config.plugin_config",
    "EnvSecret": "mldock.config.plugin_config",
}

# Spelled out (not computed from _EXPORTS) so that type checkers and IDEs can read it; a test
# checks that the two agree.
__all__ = [
    "PLUGIN_API_VERSION",
    "PROJECT_NAME",
    "ArtifactStore",
    "BackendRecord",
    "Builder",
    "BuilderRecord",
    "CommandRecord",
    "Deployer",
    "DeployerRecord",
    "EnvSecret",
    "FactoryContext",
    "HealthCheck",
    "MldockError",
    "PluginConfig",
    "StorageRecord",
    "TemplateRecord",
    "Tracker",
    "TrackerRecord",
    "__version__",
    "hookimpl",
    "hookspec",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mldock' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from mldock.config.plugin_config import EnvSecret, PluginConfig
    from mldock.errors import MldockError
    from mldock.interfaces import ArtifactStore, Builder, Deployer, HealthCheck, Tracker
    from mldock.markers import PROJECT_NAME, hookimpl, hookspec
    from mldock.records import (
        BackendRecord,
        BuilderRecord,
        CommandRecord,
        DeployerRecord,
        FactoryContext,
        StorageRecord,
        TemplateRecord,
        TrackerRecord,
    )
