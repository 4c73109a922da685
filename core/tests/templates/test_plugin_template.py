"""The ``plugin`` template: a plugin package that mldock discovers, loads and validates.

"Installed" here means what pip leaves behind: the package on the path and a ``.dist-info`` folder
with the entry points the generated ``pyproject.toml`` declares, so mldock's real entry-point
discovery finds it (no pip run, no network).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib

import pytest


@pytest.fixture
def plugin_project(render, templates):
    return render(str(templates / "plugin"), "mystore")


@pytest.fixture
def installed(plugin_project, tmp_path):
    """PYTHONPATH value under which the rendered plugin is installed (entry points included)."""
    meta = tomllib.loads((plugin_project / "pyproject.toml").read_text())["project"]
    site = tmp_path / "site"
    info = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    lines = "".join(f"{name} = {target}\n"
                    for name, target in meta["entry-points"]["mldock"].items())
    (info / "entry_points.txt").write_text(f"[mldock]\n{lines}")
    return os.pathsep.join([str(site), str(plugin_project / "src")])


def test_renders_a_named_package(plugin_project):
    assert plugin_project.name == "mldock-mystore"
    meta = tomllib.loads((plugin_project / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "mldock-mystore"
    assert meta["project"]["entry-points"]["mldock"] == {"mystore": "mldock_mystore.plugin"}
    assert any(dep.startswith("mldock-core") for dep in meta["project"]["dependencies"])
    # the layout of mldock's own plugins: src/, one job per module, one test file per module
    for rel in ("src/mldock_mystore/__init__.py", "src/mldock_mystore/plugin.py",
                "src/mldock_mystore/store.py", "src/mldock_mystore/config.py",
                "src/mldock_mystore/py.typed", "tests/test_conformance.py",
                "tests/test_plugin.py", "tests/test_config.py", "tests/test_store.py",
                "README.md", "CHANGELOG.md"):
        assert (plugin_project / rel).is_file(), rel
    contract = (plugin_project / "tests" / "test_conformance.py").read_text()
    assert "(ArtifactStoreContract)" in contract and "(RegistrationContract)" in contract


def test_package_imports_and_registers_a_storage_record(plugin_project, run):
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "from mldock_mystore import plugin\n"
        "from mldock.records import StorageRecord\n"
        "(record,) = plugin.mldock_storages()\n"
        "assert isinstance(record, StorageRecord)\n"
        "lazy = 'mldock_mystore.store' not in sys.modules\n"
        "print(json.dumps({'name': record.name, 'schemes': record.schemes, 'lazy': lazy}))\n")
    result = run([sys.executable, "-c", code], cwd=plugin_project,
                 env={"PYTHONPATH": str(plugin_project / "src")})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"name": "mystore", "schemes": ["mystore"], "lazy": True}


def test_mldock_discovers_the_installed_plugin(installed, run, mldock_cmd, tmp_path):
    result = run([*mldock_cmd, "plugins", "list", "--json"], cwd=tmp_path,
                 env={"PYTHONPATH": installed})
    assert result.returncode == 0, result.stderr
    row = next(r for r in json.loads(result.stdout) if r["name"] == "mystore")
    assert (row["status"], row["distribution"]) == ("active", "mldock-mystore")
    assert row["provides"] == {"storage": ["mystore"]}


def test_a_project_can_select_and_configure_it(installed, render, run, mldock_cmd):
    project = render("minimal", "uses-plugin")
    config = project / "mldock.toml"
    base = config.read_text()
    config.write_text(base + '\n[storage]\nuri = "mystore://artifacts"\n\n[storage.mystore]\n'
                             'fsync = false\ntoken = "env:MYSTORE_TOKEN"\n')
    ok = run([*mldock_cmd, "config", "validate"], cwd=project, env={"PYTHONPATH": installed})
    assert ok.returncode == 0, ok.stderr
    config.write_text(base + '\n[storage]\nuri = "mystore://artifacts"\n\n[storage.mystore]\n'
                             'fsnyc = false\n')
    typo = run([*mldock_cmd, "config", "validate"], cwd=project, env={"PYTHONPATH": installed})
    assert typo.returncode == 2
    assert "storage.mystore.fsnyc" in typo.stderr


def test_its_own_tests_and_the_conformance_kit_pass(installed, plugin_project, run):
    pytest.importorskip("mldock.testing", reason="the conformance kit mldock.testing is missing")
    result = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                 cwd=plugin_project, env={"PYTHONPATH": installed, "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert re.match(r"^\d+ passed in ", summary), summary  # no failures, no skips
    assert int(summary.split()[0]) >= 30  # the contract classes were collected, not just ours


def test_prefixed_name_is_not_doubled(render, templates):
    project = render(str(templates / "plugin"), "mldock-fancy")
    assert project.name == "mldock-fancy"
    assert (project / "src" / "mldock_fancy" / "plugin.py").is_file()


def test_unsupported_concern_is_refused(templates, tmp_path):
    from cookiecutter.exceptions import FailedHookException
    from cookiecutter.main import cookiecutter

    with pytest.raises(FailedHookException):
        cookiecutter(str(templates / "plugin"), no_input=True, output_dir=str(tmp_path),
                     extra_context={"project_name": "x", "concern": "tracker"})
    assert list(tmp_path.iterdir()) == []


def test_store_round_trip_through_the_factory(installed, plugin_project, run, tmp_path):
    """The record's factory builds a working store from a URI, as `[storage] uri` selects it."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from mldock.records import FactoryContext\n"
        "from mldock_mystore import plugin\n"
        "root = Path(sys.argv[1])\n"
        "(record,) = plugin.mldock_storages()\n"
        "store = record.build(FactoryContext(uri='mystore://store', project_dir=root))\n"
        "(root / 'model.bin').write_bytes(b'weights')\n"
        "ref = store.put_file(root / 'model.bin', 'runs/1/model.bin')\n"
        "store.get_file('runs/1/model.bin', root / 'back.bin')\n"
        "print(ref.uri, (root / 'back.bin').read_bytes().decode(), store.list())\n")
    result = run([sys.executable, "-c", code, str(tmp_path)], cwd=tmp_path,
                 env={"PYTHONPATH": installed})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"mystore://{tmp_path}/store/runs/1/model.bin", "weights",
                                     "['runs/1/model.bin']"]
