"""Loading plugins: built-ins first from an explicit list, then entry points one at a time.

Load order (documented in ``docs/architecture.md``):

1. the hookspecs of :mod:`mldock.hookspecs`;
2. the built-in plugins of :data:`BUILTIN_PLUGINS`, in that order (a failure here is a bug in
   mldock and is raised);
3. the entry points of group ``mldock``, sorted by name, *discovered* (name, distribution,
   version) without importing them. A plugin is imported only when a command needs something it
   provides (:mod:`mldock.host.provides` remembers what each one registered), or when every plugin
   is asked for (``plugins list``). Each import runs inside its own ``try``: a plugin that fails to
   import, exits (``sys.exit``) or declares an unknown hook is recorded as ``failed`` with its
   traceback, a one-line warning goes to stderr, and every other plugin still loads. Whatever a
   plugin prints while it is imported goes to stderr, so ``--json`` output and
   ``run_id=$(mldock train)`` stay clean.

Environment switches: ``MLDOCK_DISABLE_PLUGINS=a,b`` blocks plugins by name (built-ins included,
except ``core-commands``); ``MLDOCK_LOAD_PLUGINS=a,b`` loads only those entry-point plugins;
``MLDOCK_STRICT_PLUGINS=1`` re-raises the first failure instead of recording it.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import TYPE_CHECKING

import pluggy

from mldock import PLUGIN_API_VERSION, __version__, hookspecs
from mldock.errors import PluginError
from mldock.host.provides import Provided, ProvidesCache, fingerprint
from mldock.markers import PROJECT_NAME

if TYPE_CHECKING:  # pragma: no cover
    from mldock.host.registry import Registry

BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("core-commands", "mldock.builtin.commands"),
    ("core-templates", "mldock.builtin.templates"),
    ("docker-build", "mldock.builtin.docker_build"),
    ("local-storage", "mldock.builtin.local_storage"),
    ("sqlite-tracking", "mldock.builtin.sqlite_tracking"),
    ("local-deploy", "mldock.builtin.local_deploy"),
)
"""(plugin name, module) of the built-in plugins, registered first and in this order."""

UNBLOCKABLE = frozenset({"core-commands"})


class PluginStatus(StrEnum):
    ACTIVE = "active"
    FAILED = "failed"
    DISABLED = "disabled"


@dataclass
class PluginInfo:
    """What ``mldock plugins list`` shows about one plugin."""

    name: str
    distribution: str
    version: str
    module: str
    builtin: bool
    status: PluginStatus = PluginStatus.ACTIVE
    error: str | None = None
    traceback: str | None = None
    provides: dict[str, list[str]] = field(default_factory=dict)


def _env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def _strict() -> bool:
    return os.environ.get("MLDOCK_STRICT_PLUGINS", "").lower() in {"1", "true", "yes", "on"}


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


@contextmanager
def plugin_code() -> Iterator[None]:
    """Run third-party code with its ``print`` output sent to stderr (stdout is the command's)."""
    with redirect_stdout(sys.stderr):
        yield


PLUGIN_FAILURES = (Exception, SystemExit)
"""What a plugin's import or hook may raise without taking the CLI down. ``KeyboardInterrupt``
is not among them: Ctrl-C during start-up belongs to the user and stops the command."""


def check_plugin_api(info: PluginInfo, plugin: object) -> None:
    """Refuse a plugin built for another plugin API, right after import and before any hook runs.

    The entry-point module declares ``MLDOCK_PLUGIN_API = <int>``. Without it the plugin predates
    the declaration and is taken as API 1 (the first one), so plugins written before it still load.
    """
    declared = getattr(plugin, "MLDOCK_PLUGIN_API", 1)
    if isinstance(declared, bool) or not isinstance(declared, int):
        raise PluginError(
            f"plugin {info.name!r} ({info.distribution}) declares MLDOCK_PLUGIN_API ="
            f" {declared!r}; it must be an integer such as {PLUGIN_API_VERSION}:"
            " report this to the plugin's authors")
    if declared != PLUGIN_API_VERSION:
        raise PluginError(
            f"plugin {info.name!r} ({info.distribution}) was built for mldock plugin API"
            f" {declared}; this mldock-core speaks {PLUGIN_API_VERSION}: upgrade mldock-core or"
            " install a matching plugin version")


class PluginHost:
    """Owns the pluggy manager and the status of every plugin.

    Use :func:`get_host` for the process-wide instance; tests build their own.
    """

    def __init__(self, *, builtins: tuple[tuple[str, str], ...] = BUILTIN_PLUGINS,
                 use_entry_points: bool = True, quiet: bool = False,
                 cache: ProvidesCache | None = None):
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._quiet = quiet
        self._pending: dict[str, EntryPoint] = {}
        self._discovered: dict[str, EntryPoint] = {}
        self._fingerprints: dict[str, str] = {}
        self.generation = 0
        """Grows each time plugins are imported, so the registry knows to collect again."""
        self.cache = cache if cache is not None else (
            ProvidesCache.default() if use_entry_points else ProvidesCache(None))
        disabled = set(_env_list("MLDOCK_DISABLE_PLUGINS") or ())
        only = _env_list("MLDOCK_LOAD_PLUGINS")
        for name, module in builtins:
            self._load_builtin(name, module, disabled)
        if use_entry_points:
            eps = sorted(entry_points(group=PROJECT_NAME), key=lambda ep: ep.name)
            for ep in eps:
                self._discover(ep, disabled, only)
        self._registry: Registry | None = None

    # --- loading ------------------------------------------------------------------------------
    def _load_builtin(self, name: str, module: str, disabled: set[str]) -> None:
        info = PluginInfo(name=name, distribution="mldock-core", version=__version__,
                          module=module, builtin=True)
        self.plugins[name] = info
        if name in disabled and name not in UNBLOCKABLE:
            info.status = PluginStatus.DISABLED
            return
        self.pm.register(import_module(module), name=name)

    def _discover(self, ep: EntryPoint, disabled: set[str], only: list[str] | None) -> None:
        """Record an entry point without importing it (:meth:`load` imports it when needed)."""
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            name=ep.name,
            distribution=dist.name if dist is not None else "unknown",
            version=dist.version if dist is not None else "unknown",
            module=ep.value,
            builtin=False,
        )
        if ep.name in self.plugins:
            other = self.plugins[ep.name]
            self._fail(info, PluginError(
                f"plugin name {ep.name!r} is used by both {other.distribution} and"
                f" {info.distribution}; uninstall one of them"))
            self.plugins[f"{ep.name}@{info.distribution}"] = info
            return
        self.plugins[ep.name] = info
        if ep.name in disabled or (only is not None and ep.name not in only):
            info.status = PluginStatus.DISABLED
            return
        self._pending[ep.name] = ep
        self._discovered[ep.name] = ep

    def _import(self, ep: EntryPoint) -> None:
        info = self.plugins[ep.name]
        try:
            with plugin_code():
                plugin = ep.load()
            check_plugin_api(info, plugin)
            self.pm.register(plugin, name=ep.name)
        except PLUGIN_FAILURES as exc:  # a broken plugin must never break the CLI
            self._fail(info, exc)
            return
        try:
            self.pm.check_pending()
        except Exception as exc:  # noqa: BLE001 - misspelt hookimpl: unregister this plugin only
            self.pm.unregister(name=ep.name)
            self._fail(info, exc)

    # --- lazy loading -------------------------------------------------------------------------
    def pending(self) -> list[str]:
        """Entry-point plugins discovered but not imported yet, sorted."""
        return sorted(self._pending)

    def load(self, names: Iterable[str]) -> bool:
        """Import the named pending plugins (sorted); True when any was imported."""
        todo = sorted(set(names) & set(self._pending))
        for name in todo:
            self._import(self._pending.pop(name))
        if todo:
            self.generation += 1
        return bool(todo)

    def load_all(self) -> bool:
        """Import every pending plugin (``plugins list``, and lookups the cache cannot answer)."""
        return self.load(list(self._pending))

    def plugin_fingerprint(self, name: str) -> str | None:
        """The cache fingerprint of entry-point plugin ``name`` (None for built-ins)."""
        ep = self._discovered.get(name)
        if ep is None:
            return None
        if name not in self._fingerprints:
            self._fingerprints[name] = fingerprint(ep)
        return self._fingerprints[name]

    def cached_provides(self, name: str) -> Provided | None:
        """What a pending plugin registered the last time it was imported, if still valid."""
        print_ = self.plugin_fingerprint(name)
        return None if print_ is None else self.cache.lookup(name, print_)

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        if _strict():
            if isinstance(exc, SystemExit):
                raise PluginError(f"plugin {info.name!r} ({info.distribution}) called"
                                  f" sys.exit({exc.code!r})") from exc
            raise exc
        info.status = PluginStatus.FAILED
        info.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        info.traceback = "".join(traceback.format_exception(exc))
        if not self._quiet:
            _warn(f"plugin {info.name!r} ({info.distribution}) failed to load and was skipped:"
                  f" {info.error}; run 'mldock plugins doctor' for details")

    def record_failure(self, plugin_name: str, exc: BaseException) -> None:
        """Mark a loaded plugin failed because one of its hooks raised or returned bad records."""
        info = self.plugins.get(plugin_name)
        if info is None:
            raise exc
        self._fail(info, exc)
        if self.pm.get_plugin(plugin_name) is not None:
            self.pm.unregister(name=plugin_name)

    def module_of(self, plugin_name: str) -> ModuleType | None:
        return self.pm.get_plugin(plugin_name)

    # --- queries ------------------------------------------------------------------------------
    @property
    def registry(self) -> Registry:  # the import is deferred: registry imports this module
        if self._registry is None:
            from mldock.host.registry import Registry

            self._registry = Registry(self)
        return self._registry

    def sorted_plugins(self, *, include_builtin: bool = True) -> list[PluginInfo]:
        infos = [p for p in self.plugins.values() if include_builtin or not p.builtin]
        return sorted(infos, key=lambda p: (not p.builtin, p.name))


@functools.cache
def get_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    return PluginHost()


def reset_host() -> None:
    """Forget the process-wide host (tests, and after installing plugins in-process)."""
    get_host.cache_clear()
