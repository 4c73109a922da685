"""Conformance tests for how a plugin package registers itself (no Docker, no cloud needed).

Subclass :class:`RegistrationContract` in the plugin's tests and name what it should provide::

    class TestRegistration(RegistrationContract):
        entry_point_name = "aws"
        distribution = "mldock-aws"
        expected = {"deployer": ["sagemaker"], "builder": ["ecr"]}

The checks run in fresh subprocesses with the current interpreter, so they see the installed
package exactly as a user's ``mldock`` does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from typing import Any, ClassVar

import pytest

from mldock.markers import PROJECT_NAME
from mldock.records import NAME_PATTERN
from mldock.testing._common import ContractBase

HEAVY_MODULES = ("docker", "boto3", "botocore", "azure", "google", "mlflow", "numpy", "pandas")
"""Top-level packages a plugin module must not import when it is loaded (only in factories)."""

IMPORT_PROBE = """
import importlib, json, sys
before = set(sys.modules)
importlib.import_module(sys.argv[1])
new = sorted({m.split('.')[0] for m in set(sys.modules) - before})
print(json.dumps(new))
"""

CLI = "from mldock.cli.main import main; main()"


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


class RegistrationContract(ContractBase):
    """A plugin package's registration: entry point, light import, valid records, shown by the CLI.

    Closed like every contract: a subclass names what to check, it never overrides a test.

    Attributes to set: ``entry_point_name`` (the name in group ``mldock``), ``distribution`` (the
    package name on PyPI) and ``expected`` (concern -> names it must provide; concerns are
    ``builder``, ``storage``, ``tracker``, ``deployer``, ``command``, ``template``).
    """

    entry_point_name: str = ""
    distribution: str = ""
    expected: ClassVar[dict[str, list[str]]] = {}
    heavy_modules: tuple[str, ...] = HEAVY_MODULES

    def _entry_point(self) -> Any:
        if not self.entry_point_name:
            pytest.fail(f"{type(self).__name__} must set entry_point_name", pytrace=False)
        found = [ep for ep in entry_points(group=PROJECT_NAME) if ep.name == self.entry_point_name]
        assert found, (f"no entry point {self.entry_point_name!r} in group {PROJECT_NAME!r}: is the"
                       " package installed, and does its pyproject declare"
                       f" [project.entry-points.{PROJECT_NAME}]?")
        assert len(found) == 1, f"{len(found)} entry points named {self.entry_point_name!r}"
        return found[0]

    def test_entry_point_resolves(self) -> None:
        """The entry point exists once, belongs to ``distribution`` and loads.

        Usually fails when the package is not installed (editable install missing) or the entry
        point names a module path that moved.
        """
        ep = self._entry_point()
        dist = getattr(ep, "dist", None)
        if dist is not None and self.distribution:
            assert _normal(dist.name) == _normal(self.distribution), dist.name
        assert ep.load() is not None

    def test_import_pulls_in_no_heavy_sdk(self) -> None:
        """Importing the plugin module in a fresh interpreter imports none of the heavy SDKs.

        Usually fails when a module-level ``import boto3`` (or a type import) sits in the plugin
        module or anything it imports; move it into the factory or under ``TYPE_CHECKING``.
        """
        module = self._entry_point().value.split(":")[0]
        out = subprocess.run([sys.executable, "-c", IMPORT_PROBE, module], capture_output=True,
                             text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr
        imported = set(json.loads(out.stdout.strip().splitlines()[-1]))
        heavy = sorted(imported & set(self.heavy_modules))
        assert not heavy, f"importing {module} imported {heavy}; import them inside factories"

    def test_records_are_valid(self) -> None:
        """The plugin's hooks match mldock's hookspecs and return well-formed records.

        Usually fails on a misspelt hook name (``mldock_storage`` instead of ``mldock_storages``),
        a hook returning a single record instead of a list, or a config model that does not import.
        """
        import pluggy

        from mldock import hookspecs
        from mldock.host.registry import CONCERNS

        plugin = self._entry_point().load()
        pm = pluggy.PluginManager(PROJECT_NAME)
        pm.add_hookspecs(hookspecs)
        pm.register(plugin, name=self.entry_point_name)
        pm.check_pending()
        provided: dict[str, list[str]] = {}
        for concern, row in CONCERNS.items():
            hook_name, record_type = row.hook, row.record_type
            function = getattr(plugin, hook_name, None)
            if function is None:
                continue
            records = function()
            assert isinstance(records, (list, tuple)), f"{hook_name} must return a list"
            for returned in records:
                assert isinstance(returned, record_type), f"{hook_name} returned {returned!r}"
                record: Any = returned  # a record of this concern (the table types it as object)
                assert NAME_PATTERN.match(record.name), record.name
                if hasattr(record, "load_config_model"):
                    model = record.load_config_model()
                    if model is not None:
                        from pydantic import BaseModel

                        assert issubclass(model, BaseModel), model
                provided.setdefault(concern, []).append(record.name)
        for concern, names in self.expected.items():
            assert set(names) <= set(provided.get(concern, [])), (concern, provided)

    def test_cli_lists_plugin_active(self) -> None:
        """``mldock plugins list --json`` shows the plugin ``active`` with the expected provides.

        Usually fails when a hook raises at registration time (the CLI marks the plugin failed and
        shows the error in this test's message), or a name clashes with another plugin.
        """
        out = subprocess.run([sys.executable, "-c", CLI, "plugins", "list", "--json"],
                             capture_output=True, text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr
        rows = {row["name"]: row for row in json.loads(out.stdout)}
        row = rows.get(self.entry_point_name)
        assert row is not None, f"{self.entry_point_name!r} not listed: {sorted(rows)}"
        assert row["status"] == "active", row
        for concern, names in self.expected.items():
            assert set(names) <= set(row["provides"].get(concern, [])), row
