"""Fake plugin distributions, installed for real: a dist-info folder with entry points on sys.path.

importlib.metadata finds them exactly as it finds a pip-installed plugin, so these tests exercise
the real entry-point discovery, not a mock of it.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest
from mldock.host.loader import PluginHost, reset_host


def make_dist(root: Path, dist: str, version: str, entry_points: dict[str, str],
              modules: dict[str, str]) -> Path:
    """Write an installed distribution into ``root``: modules plus its dist-info."""
    root.mkdir(parents=True, exist_ok=True)
    for filename, source in modules.items():
        path = root / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[mldock]\n{lines}\n")
    return root


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path for fake distributions; module caches cleaned up after."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    for var in ("MLDOCK_DISABLE_PLUGINS", "MLDOCK_LOAD_PLUGINS", "MLDOCK_STRICT_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLDOCK_CACHE_DIR", str(tmp_path / "cache"))  # what plugins provide
    importlib.invalidate_caches()
    reset_host()
    yield root
    for name in set(sys.modules) - before:
        if name.startswith("fake_"):
            del sys.modules[name]
    reset_host()


@pytest.fixture(name="make_dist")
def make_dist_fixture():
    """The :func:`make_dist` helper, as a fixture."""
    return make_dist


@pytest.fixture(name="good_plugin")
def good_plugin_fixture() -> str:
    """Source of a well-behaved plugin module: storage 'fakes3' and deployer 'fakecloud'."""
    return GOOD_PLUGIN


@pytest.fixture
def host_factory(plugin_dir):
    def build(*, load: bool = True, **kwargs) -> PluginHost:
        """A fresh host; ``load=False`` leaves entry points discovered but not imported."""
        importlib.invalidate_caches()
        host = PluginHost(**kwargs)
        if load:
            host.load_all()
        return host

    return build


GOOD_PLUGIN = '''
from mldock import hookimpl, StorageRecord, DeployerRecord

def make(ctx):
    raise RuntimeError("not used")

@hookimpl
def mldock_storages():
    return [StorageRecord(name="fakes3", summary="fake store", schemes=("fakes3",), factory=make)]

@hookimpl
def mldock_deployers():
    return [DeployerRecord(name="fakecloud", summary="fake cloud", factory=make)]
'''
