"""The registry: the only module that calls ``pm.hook.*``.

It imports a plugin only when a lookup may need it (so ``--help`` imports no plugin whose command
groups are known from the cache), keys records by name, and answers lookups by name or URI scheme.
It never depends on hook call order: records are sorted by name (a built-in first when two plugins
share a name), and a name registered twice is an error naming both distributions, raised only when
that name is looked up.

Each hook implementation is called on its own: a plugin whose hook raises or returns something that
is not a record of the right type is marked ``failed`` and its records are dropped; the others stay.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload
from urllib.parse import urlsplit

from mldock.concerns import CONCERNS, Selection
from mldock.errors import BackendConflictError, PluginError, UnknownBackendError
from mldock.host.suggest import unknown_name_message
from mldock.records import (
    AnyRecord,
    BackendRecord,
    BuilderRecord,
    CommandRecord,
    DeployerRecord,
    StorageRecord,
    TemplateRecord,
    TrackerRecord,
)

if TYPE_CHECKING:  # pragma: no cover
    from mldock.host.loader import PluginHost

__all__ = ["CONCERNS", "LIFECYCLE_HOOKS", "Registered", "Registry", "uri_scheme"]

LIFECYCLE_HOOKS = (
    "mldock_before_build",
    "mldock_after_build",
    "mldock_run_started",
    "mldock_run_finished",
    "mldock_deployed",
)


@dataclass(frozen=True)
class Registered:
    """A record and the plugin that registered it."""

    record: Any
    plugin: str
    distribution: str


RESERVED_COMMANDS_PLUGIN = "core-commands"
"""The built-in plugin whose command names no other plugin may take (``train``, ``deploy``, …)."""


class Registry:
    """Records by concern and name, collected lazily from the host's plugins.

    Each plugin's registration hooks are called once, on their own (:meth:`_records_of`); a lookup
    first imports only the pending plugins that may provide the name (per the host's cache of what
    each provided last time), and everything else only if the name is still missing.
    """

    def __init__(self, host: PluginHost):
        self._host = host
        self._per_plugin: dict[str, dict[str, list[Any]]] = {}
        self._tables: dict[str, tuple[int, dict[str, Registered], dict[str, list[Registered]]]] = {}

    # --- one plugin's records -----------------------------------------------------------------
    def _records_of(self, plugin: str) -> dict[str, list[Any]]:
        """concern -> records of one loaded plugin; a plugin whose hook fails is marked failed."""
        if plugin in self._per_plugin:
            return self._per_plugin[plugin]
        from mldock.host.loader import PLUGIN_FAILURES, plugin_code

        out: dict[str, list[Any]] = {}
        try:
            with plugin_code():
                for concern, row in CONCERNS.items():
                    hook_name, record_type = row.hook, row.record_type
                    records = self._call_hook(plugin, hook_name)
                    for record in records:
                        if not isinstance(record, record_type):
                            raise PluginError(f"{hook_name} returned {type(record).__name__},"
                                              f" expected {record_type.__name__}")
                    out[concern] = records
            self._check_reserved(plugin, out.get("command", []))
        except PLUGIN_FAILURES as exc:  # isolate the faulty plugin
            self._host.record_failure(plugin, exc)
            out = {}
        self._per_plugin[plugin] = out
        self._remember(plugin, out)
        return out

    def _call_hook(self, plugin: str, hook_name: str) -> list[Any]:
        hook = getattr(self._host.pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            if impl.plugin_name == plugin:
                return list(impl.function() or ())
        return []

    def _check_reserved(self, plugin: str, commands: list[Any]) -> None:
        """Core command names belong to core: a plugin cannot replace ``train`` (or any other)."""
        if plugin == RESERVED_COMMANDS_PLUGIN:
            return
        from mldock.builtin.commands import CORE_COMMANDS

        taken = sorted(r.name for r in commands if r.name in CORE_COMMANDS)
        if taken:
            info = self._host.plugins.get(plugin)
            dist = info.distribution if info else "unknown"
            raise PluginError(f"plugin {plugin!r} ({dist}) registers the command"
                              f" {taken[0]!r}, which is reserved for mldock's own command;"
                              " its plugin was not loaded")

    def _remember(self, plugin: str, records: dict[str, list[Any]]) -> None:
        """Tell the host's cache what this entry-point plugin provides (skipped for failures)."""
        from mldock.host.provides import Provided

        print_ = self._host.plugin_fingerprint(plugin)
        info = self._host.plugins.get(plugin)
        if print_ is None or info is None or info.status.value != "active":
            return
        provided = Provided(
            names={c: sorted(r.name for r in rs) for c, rs in records.items() if rs},
            schemes={c: sorted({s for r in rs for s in getattr(r, "schemes", ())})
                     for c, rs in records.items() if any(getattr(r, "schemes", ()) for r in rs)},
            commands={r.name: r.summary for r in records.get("command", [])})
        self._host.cache.remember(plugin, print_, provided)
        self._host.cache.save()

    # --- tables over the loaded plugins ---------------------------------------------------------
    def _table(self, concern: str) -> tuple[dict[str, Registered], dict[str, list[Registered]]]:
        generation = self._host.generation
        cached = self._tables.get(concern)
        if cached is not None and cached[0] == generation:
            return cached[1], cached[2]
        found: dict[str, list[Registered]] = {}
        for plugin in sorted(name for name, _ in self._host.pm.list_name_plugin()):
            records = self._records_of(plugin).get(concern, [])
            if self._host.pm.get_plugin(plugin) is None:
                continue  # failed while its records were collected
            info = self._host.plugins.get(plugin)
            dist = info.distribution if info else "unknown"
            for record in records:
                found.setdefault(record.name, []).append(Registered(record, plugin, dist))
        table: dict[str, Registered] = {}
        conflicts: dict[str, list[Registered]] = {}
        for name in sorted(found):
            entries = sorted(found[name], key=lambda r: (r.distribution != "mldock-core",
                                                         r.distribution, r.plugin))
            table[name] = entries[0]
            if len(entries) > 1:
                conflicts[name] = entries
        self._tables[concern] = (generation, table, conflicts)
        return table, conflicts

    def _collect(self, concern: str) -> dict[str, Registered]:
        """Every record of ``concern`` (imports every pending plugin first)."""
        self._host.load_all()
        return self._table(concern)[0]

    def _load_for(self, concern: str, *, name: str | None = None,
                  scheme: str | None = None) -> None:
        """Import the pending plugins that provide ``name``/``scheme`` or are not in the cache."""
        wanted = []
        for plugin in self._host.pending():
            provided = self._host.cached_provides(plugin)
            if provided is None or provided.offers(concern, name=name, scheme=scheme):
                wanted.append(plugin)
        self._host.load(wanted)

    def records(self, concern: str) -> dict[str, Registered]:
        """Name -> registered record for one concern, sorted by name."""
        if concern == "command":
            return self._commands()
        return dict(self._collect(concern))

    def _commands(self) -> dict[str, Registered]:
        """Command groups for ``mldock --help``: cached plugins are listed without importing them.

        A cached plugin's group is a stand-in record whose factory imports the plugin and then
        calls the real record's factory, so ``mldock <group>`` costs that import only when it runs.
        """
        from mldock.records import CommandRecord

        self._load_for("command")
        table = dict(self._table("command")[0])
        for plugin in self._host.pending():
            provided = self._host.cached_provides(plugin)
            info = self._host.plugins[plugin]
            for name, summary in sorted((provided.commands if provided else {}).items()):
                if name not in table:
                    stand_in = CommandRecord(name=name, summary=summary,
                                             factory=self._deferred_command(plugin, name))
                    table[name] = Registered(stand_in, plugin, info.distribution)
        return dict(sorted(table.items()))

    def _deferred_command(self, plugin: str, name: str) -> Any:
        def load() -> Any:
            self._host.load([plugin])
            registered = self._table("command")[0].get(name)
            if registered is None or registered.plugin != plugin:
                raise PluginError(f"plugin {plugin!r} no longer provides the command {name!r}",
                                  hint="run 'mldock plugins list' to refresh what plugins provide")
            return registered.record.factory()
        return load

    def conflicts(self, concern: str) -> dict[str, list[Registered]]:
        """Names of ``concern`` registered by more than one plugin."""
        self._collect(concern)
        return dict(self._table(concern)[1])

    # --- lookup -------------------------------------------------------------------------------
    @overload
    def get(self, concern: Literal["builder"], name: str) -> BuilderRecord: ...
    @overload
    def get(self, concern: Literal["storage"], name: str) -> StorageRecord: ...
    @overload
    def get(self, concern: Literal["tracker"], name: str) -> TrackerRecord: ...
    @overload
    def get(self, concern: Literal["deployer"], name: str) -> DeployerRecord: ...
    @overload
    def get(self, concern: Literal["command"], name: str) -> CommandRecord: ...
    @overload
    def get(self, concern: Literal["template"], name: str) -> TemplateRecord: ...
    @overload
    def get(self, concern: str, name: str) -> AnyRecord: ...

    def get(self, concern: str, name: str) -> AnyRecord:
        """The record named ``name``; raises a helpful error for unknown or clashing names.

        A clash is raised only here, by the command that needs that backend: two plugins both
        registering ``local`` storage never stop ``mldock runs list``.
        """
        self._load_for(concern, name=name)
        table, conflicts = self._table(concern)
        if name not in table and self._host.load_all():
            table, conflicts = self._table(concern)
        clash = conflicts.get(name)
        if clash:
            who = " and ".join(f"{r.distribution} (plugin {r.plugin!r})" for r in clash)
            raise BackendConflictError(
                f"{concern} {name!r} is registered by both {who}",
                hint="uninstall one of them or block one with MLDOCK_DISABLE_PLUGINS")
        if name not in table:
            message, hint = unknown_name_message(concern, name, list(table))
            raise UnknownBackendError(message, hint=hint)
        return table[name].record

    @overload
    def by_scheme(self, concern: Literal["storage"], uri: str) -> StorageRecord: ...
    @overload
    def by_scheme(self, concern: Literal["tracker"], uri: str) -> TrackerRecord: ...
    @overload
    def by_scheme(self, concern: str, uri: str) -> BackendRecord: ...

    def by_scheme(self, concern: str, uri: str) -> BackendRecord:
        """The storage or tracker record serving the scheme of ``uri``."""
        scheme = uri_scheme(uri)
        self._load_for(concern, scheme=scheme)
        table = self._table(concern)[0]
        matches = [r for r in table.values() if scheme in r.record.schemes]
        if not matches and self._host.load_all():
            table = self._table(concern)[0]
            matches = [r for r in table.values() if scheme in r.record.schemes]
        if not matches:
            known = sorted({s for r in table.values() for s in r.record.schemes})
            message, hint = unknown_name_message(f"{concern} URI scheme", scheme, known)
            raise UnknownBackendError(f"{message} (in {uri!r})", hint=hint)
        if len(matches) > 1:
            who = " and ".join(f"{r.distribution} ({r.record.name})" for r in matches)
            raise BackendConflictError(f"{concern} URI scheme {scheme!r} is served by both {who}",
                                       hint="set the backend by name or uninstall one of them")
        return self.backend(concern, matches[0].record.name)

    def backend(self, concern: str, name: str) -> BackendRecord:
        """The record ``name`` of a backend concern (builder, storage, tracker, deployer)."""
        record = self.get(concern, name)
        if not isinstance(record, BackendRecord):
            raise ValueError(f"{concern!r} is not a backend concern")
        return record

    def select(self, selection: Selection) -> BackendRecord:
        """The record a config selects (:func:`mldock.concerns.selection`): by name or by scheme."""
        if selection.name is not None:
            return self.backend(selection.concern, selection.name)
        return self.by_scheme(selection.concern, selection.uri or "")

    def provides(self) -> dict[str, dict[str, list[str]]]:
        """Plugin name -> concern -> names it registered (imports every plugin)."""
        self._host.load_all()
        out: dict[str, dict[str, list[str]]] = {}
        for concern in CONCERNS:
            table, conflicts = self._table(concern)
            entries = list(table.values())
            for clash in conflicts.values():
                entries.extend(clash[1:])
            for reg in entries:
                out.setdefault(reg.plugin, {}).setdefault(concern, []).append(reg.record.name)
        for concerns in out.values():
            for names in concerns.values():
                names.sort()
        return out

    # --- lifecycle broadcasts -------------------------------------------------------------------
    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook on every plugin; a failing implementation only warns."""
        if hook_name not in LIFECYCLE_HOOKS:
            raise ValueError(f"{hook_name} is not a lifecycle hook")
        hook = getattr(self._host.pm.hook, hook_name)
        from mldock.host.loader import PLUGIN_FAILURES, plugin_code

        for impl in hook.get_hookimpls():
            try:
                with plugin_code():
                    impl.function(**{k: kwargs[k] for k in impl.argnames})
            except PLUGIN_FAILURES as exc:  # reacting plugins never fail a command
                print(f"warning: plugin {impl.plugin_name!r} failed in {hook_name}:"
                      f" {type(exc).__name__}: {exc}", file=sys.stderr)


def uri_scheme(uri: str) -> str:
    """The scheme of a URI; a plain path (no scheme, or a Windows drive) counts as ``file``."""
    scheme = urlsplit(uri).scheme.lower()
    if not scheme or len(scheme) == 1:
        return "file"
    return scheme
