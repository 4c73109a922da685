"""The built-in ``local-storage`` and ``sqlite-tracking`` plugins register, resolve and stay light.

RegistrationContract needs an entry point, which built-ins do not have; these tests check the same
things through the CLI and the registry. The contract itself is exercised on a sample plugin
installed into a temporary ``sys.path`` entry (a real dist-info with an entry point).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
from mldock.host.loader import PluginHost
from mldock.local.storage import LocalArtifactStore
from mldock.local.tracking import SqliteTracker
from mldock.records import FactoryContext
from mldock.testing import RegistrationContract
from mldock.testing.registration import CLI, HEAVY_MODULES, IMPORT_PROBE

LIGHT_MODULES = ["mldock.builtin.local_storage", "mldock.builtin.sqlite_tracking",
                 "mldock.local.storage", "mldock.local.tracking", "mldock.local.hashing"]


@pytest.fixture(scope="module")
def plugin_rows() -> dict[str, dict]:
    out = subprocess.run([sys.executable, "-c", CLI, "plugins", "list", "--all", "--json"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return {row["name"]: row for row in json.loads(out.stdout)}


@pytest.mark.parametrize(("plugin", "concern", "name"), [
    ("local-storage", "storage", "local"),
    ("sqlite-tracking", "tracker", "sqlite"),
])
def test_cli_lists_builtin_active(plugin_rows: dict[str, dict], plugin: str, concern: str,
                                  name: str) -> None:
    row = plugin_rows[plugin]
    assert (row["status"], row["builtin"], row["distribution"]) == ("active", True, "mldock-core")
    assert row["provides"] == {concern: [name]}


def test_plain_list_hides_builtins(plugin_rows: dict[str, dict]) -> None:
    out = subprocess.run([sys.executable, "-c", CLI, "plugins", "list", "--json"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    names = {row["name"] for row in json.loads(out.stdout)}
    assert not names & {"local-storage", "sqlite-tracking"}


@pytest.fixture(scope="module")
def registry():
    return PluginHost(use_entry_points=False, quiet=True).registry


@pytest.mark.parametrize(("uri", "expected"), [
    (None, ".mldock/artifacts"), ("file://store", "store"), (".art", ".art")])
def test_storage_factory_by_scheme(registry, tmp_path: Path, uri: str | None, expected: str
                                   ) -> None:
    record = registry.by_scheme("storage", uri or "file:///")
    assert record.name == "local"
    assert {"content-addressed", "atomic", "delete", "list"} <= record.capabilities
    store = record.build(FactoryContext(uri=uri, project_dir=tmp_path))
    assert isinstance(store, LocalArtifactStore) and store.root == tmp_path / expected


@pytest.mark.parametrize(("uri", "expected"), [
    (None, ".mldock/runs.db"), ("sqlite:///track/runs.db", "track/runs.db")])
def test_tracker_factory_by_scheme(registry, tmp_path: Path, uri: str | None, expected: str
                                   ) -> None:
    record = registry.by_scheme("tracker", uri or "sqlite:///x.db")
    assert record.name == "sqlite" and "concurrent-writers" in record.capabilities
    tracker = record.build(FactoryContext(uri=uri, project_dir=tmp_path))
    assert isinstance(tracker, SqliteTracker) and tracker.path == tmp_path / expected
    run_id = tracker.create_run("p")
    assert tracker.get_run(run_id).status.value == "running"
    tracker.close()


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_backend_modules_import_no_heavy_package(module: str) -> None:
    out = subprocess.run([sys.executable, "-c", IMPORT_PROBE, module], capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    imported = set(json.loads(out.stdout.strip().splitlines()[-1]))
    heavy = imported & {*HEAVY_MODULES, "typer", "pydantic", "rich", "pytest"}
    assert not heavy, f"{module} imported {sorted(heavy)}"


SAMPLE_PLUGIN = """
from mldock.markers import hookimpl
from mldock.records import StorageRecord


def _make(context):
    import json  # a factory may import anything: only called when the store is used
    return json


@hookimpl
def mldock_storages():
    return [StorageRecord(name="sample", summary="Sample store of the kit's own test",
                          schemes=("sample",), factory=_make)]
"""


@pytest.fixture(scope="class")
def sample_plugin(tmp_path_factory: pytest.TempPathFactory):
    """Install ``mldock-sample`` (module + dist-info with an ``mldock`` entry point) on a path
    that this process and its subprocesses see."""
    import importlib

    site = tmp_path_factory.mktemp("site")
    (site / "mldock_sample_plugin.py").write_text(SAMPLE_PLUGIN)
    dist = site / "mldock_sample-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mldock-sample\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[mldock]\nsample = mldock_sample_plugin\n")
    patch = pytest.MonkeyPatch()
    patch.syspath_prepend(str(site))
    old = os.environ.get("PYTHONPATH")
    patch.setenv("PYTHONPATH", str(site) if not old else f"{site}{os.pathsep}{old}")
    importlib.invalidate_caches()
    yield site
    patch.undo()
    sys.modules.pop("mldock_sample_plugin", None)


@pytest.mark.usefixtures("sample_plugin")
class TestSamplePluginRegistration(RegistrationContract):
    entry_point_name = "sample"
    distribution = "mldock-sample"
    expected: ClassVar[dict[str, list[str]]] = {"storage": ["sample"]}


@pytest.mark.parametrize(("module", "contract_class"), [
    ("test_local_storage", "TestLocalStoreContract"),
    ("test_sqlite_tracker", "TestSqliteTrackerContract"),
    ("test_local_deployer_contract", "TestLocalDeployer"),
    ("test_docker_builder_contract", "TestDockerBuilder"),
])
def test_builtin_contracts_run_every_capability(module: str, contract_class: str) -> None:
    """Core's contract classes take their flags from the built-in records and none is off: every
    optional contract test runs on mldock's own backends (a record that forgot a capability it
    has, or a class that narrowed one, would skip tests here without anyone noticing)."""
    import importlib.util

    from mldock.testing import Capability

    path = Path(__file__).with_name(f"{module}.py")
    spec = importlib.util.spec_from_file_location(f"_builtin_contract_{module}", path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    cls = getattr(loaded, contract_class)
    assert cls.record is not None and not cls.narrowed
    flags = {name for base in cls.__mro__ for name, value in vars(base).items()
             if isinstance(value, Capability)}
    instance = cls()
    assert flags and all(getattr(instance, flag) for flag in sorted(flags)), sorted(
        flag for flag in flags if not getattr(instance, flag))
