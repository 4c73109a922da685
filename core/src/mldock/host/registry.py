"""The registry: the only module that calls ``pm.hook.*``.

It collects the records of one concern the first time that concern is needed (so ``--help``
only asks for command groups), keys them by name, and answers lookups by name or URI scheme. It
never depends on hook call order: records are sorted by name, and a name registered twice is an
error naming both distributions, raised when that name is looked up.

Each hook implementation is called on its own: a plugin whose hook raises or returns something that
is not a record of the right type is marked ``failed`` and its records are dropped; the others stay.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mldock.errors import PluginError, UnknownBackendError
from mldock.host.suggest import unknown_name_message
from mldock.records import (
    BuilderRecord,
    CommandRecord,
    DeployerRecord,
    StorageRecord,
    TemplateRecord,
    TrackerRecord,
)

if TYPE_CHECKING:  # pragma: no cover
    from mldock.host.loader import PluginHost

CONCERNS: dict[str, tuple[str, type]] = {
    "builder": ("mldock_builders", BuilderRecord),
    "storage": ("mldock_storages", StorageRecord),
    "tracker": ("mldock_trackers", TrackerRecord),
    "deployer": ("mldock_deployers", DeployerRecord),
    "command": ("mldock_commands", CommandRecord),
    "template": ("mldock_templates", TemplateRecord),
}
"""concern -> (registration hook name, record class)."""

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


class Registry:
    """Records by concern and name, collected lazily from the host's plugins."""

    def __init__(self, host: "PluginHost"):
        self._host = host
        self._by_concern: dict[str, dict[str, Registered]] = {}
        self._conflicts: dict[str, dict[str, list[Registered]]] = {}

    # --- collection ---------------------------------------------------------------------------
    def _collect(self, concern: str) -> dict[str, Registered]:
        if concern in self._by_concern:
            return self._by_concern[concern]
        hook_name, record_type = CONCERNS[concern]
        hook = getattr(self._host.pm.hook, hook_name)
        found: dict[str, list[Registered]] = {}
        for impl in hook.get_hookimpls():
            plugin = impl.plugin_name
            info = self._host.plugins.get(plugin)
            dist = info.distribution if info else "unknown"
            try:
                result = impl.function()
                records = list(result or ())
                for record in records:
                    if not isinstance(record, record_type):
                        raise PluginError(
                            f"{hook_name} returned {type(record).__name__}, expected"
                            f" {record_type.__name__}")
            except Exception as exc:  # noqa: BLE001 - isolate the faulty plugin
                self._host.record_failure(plugin, exc)
                continue
            for record in records:
                found.setdefault(record.name, []).append(Registered(record, plugin, dist))
        table: dict[str, Registered] = {}
        conflicts: dict[str, list[Registered]] = {}
        for name in sorted(found):
            entries = found[name]
            table[name] = entries[0]
            if len(entries) > 1:
                conflicts[name] = sorted(entries, key=lambda r: r.distribution)
        self._by_concern[concern] = table
        self._conflicts[concern] = conflicts
        return table

    def records(self, concern: str) -> dict[str, Registered]:
        """Name -> registered record for one concern, sorted by name."""
        return dict(self._collect(concern))

    def conflicts(self, concern: str) -> dict[str, list[Registered]]:
        """Names of ``concern`` registered by more than one plugin."""
        self._collect(concern)
        return dict(self._conflicts[concern])

    # --- lookup -------------------------------------------------------------------------------
    def get(self, concern: str, name: str) -> Any:
        """The record named ``name``; raises a helpful error for unknown or clashing names."""
        table = self._collect(concern)
        clash = self._conflicts[concern].get(name)
        if clash:
            who = " and ".join(f"{r.distribution} (plugin {r.plugin!r})" for r in clash)
            raise PluginError(
                f"{concern} {name!r} is registered by both {who}",
                hint="uninstall one of them or block one with MLDOCK_DISABLE_PLUGINS")
        if name not in table:
            message, hint = unknown_name_message(concern, name, list(table))
            raise UnknownBackendError(message, hint=hint)
        return table[name].record

    def by_scheme(self, concern: str, uri: str) -> Any:
        """The storage or tracker record serving the scheme of ``uri``."""
        scheme = uri_scheme(uri)
        table = self._collect(concern)
        matches = [r for r in table.values() if scheme in r.record.schemes]
        if not matches:
            known = sorted({s for r in table.values() for s in r.record.schemes})
            message, hint = unknown_name_message(f"{concern} URI scheme", scheme, known)
            raise UnknownBackendError(f"{message} (in {uri!r})", hint=hint)
        if len(matches) > 1:
            who = " and ".join(f"{r.distribution} ({r.record.name})" for r in matches)
            raise PluginError(f"{concern} URI scheme {scheme!r} is served by both {who}",
                              hint="set the backend by name or uninstall one of them")
        return self.get(concern, matches[0].record.name)

    def provides(self) -> dict[str, dict[str, list[str]]]:
        """Plugin name -> concern -> names it registered (collects every concern)."""
        out: dict[str, dict[str, list[str]]] = {}
        for concern in CONCERNS:
            self._collect(concern)
            entries = list(self._by_concern[concern].values())
            for clash in self._conflicts[concern].values():
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
        for impl in hook.get_hookimpls():
            try:
                impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception as exc:  # noqa: BLE001 - reacting plugins never fail a command
                print(f"warning: plugin {impl.plugin_name!r} failed in {hook_name}:"
                      f" {type(exc).__name__}: {exc}", file=sys.stderr)


def uri_scheme(uri: str) -> str:
    """The scheme of a URI; a plain path (no scheme, or a Windows drive) counts as ``file``."""
    scheme = urlsplit(uri).scheme.lower()
    if not scheme or len(scheme) == 1:
        return "file"
    return scheme
