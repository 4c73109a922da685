"""The plugin API version: a plugin built for another API is refused right after import, by name.

Without the check, a plugin written against a later (or earlier) set of hooks and records loads,
then fails inside a hook with a ``TypeError`` about a record field, far from its cause. The host
reads ``MLDOCK_PLUGIN_API`` from the entry-point module before registering it, so none of its hooks
ever runs, and says which side to upgrade.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import mldock
import pytest
from mldock import PLUGIN_API_VERSION
from mldock.errors import PluginError
from mldock.host.loader import PluginStatus

from .conftest import make_dist

REPO = Path(__file__).resolve().parents[3]
MLDOCK = str(Path(sys.executable).parent / "mldock")

# A hook that leaves a trace when it runs: a refused plugin must never get that far.
PLUGIN = '''
import os, pathlib
from mldock import hookimpl, DeployerRecord
{declaration}

@hookimpl
def mldock_deployers():
    pathlib.Path(os.environ["HOOK_LOG"]).write_text("hook ran")
    return [DeployerRecord(name="{name}cloud", summary="a cloud", factory=lambda ctx: None)]
'''


def plugin_source(name: str, declaration: str) -> str:
    return PLUGIN.format(declaration=declaration, name=name)


def expected_message(name: str, dist: str, api: int) -> str:
    return (f"plugin {name!r} ({dist}) was built for mldock plugin API {api}; this mldock-core"
            f" speaks {PLUGIN_API_VERSION}: upgrade mldock-core or install a matching plugin"
            " version")


@pytest.fixture
def hook_log(tmp_path, monkeypatch) -> Path:
    log = tmp_path / "hook.log"
    monkeypatch.setenv("HOOK_LOG", str(log))
    return log


def test_core_exposes_an_integer_api_version():
    assert isinstance(PLUGIN_API_VERSION, int) and PLUGIN_API_VERSION >= 1
    assert "PLUGIN_API_VERSION" in mldock.__all__


def test_plugin_built_for_another_api_fails_with_the_message(plugin_dir, host_factory, make_dist,
                                                              good_plugin, hook_log, capsys):
    newer = PLUGIN_API_VERSION + 1
    make_dist(plugin_dir, "mldock-future", "9.0", {"future": "fake_future"},
              {"fake_future.py": plugin_source("future", f"MLDOCK_PLUGIN_API = {newer}")})
    make_dist(plugin_dir, "mldock-fake", "1.0", {"fake": "fake_good"},
              {"fake_good.py": good_plugin})
    host = host_factory()
    info = host.plugins["future"]
    assert info.status is PluginStatus.FAILED
    assert info.error == "PluginError: " + expected_message("future", "mldock-future", newer)
    assert "futurecloud" not in host.registry.records("deployer")
    assert not hook_log.exists(), "a refused plugin's hook ran"
    assert host.plugins["fake"].status is PluginStatus.ACTIVE
    err = capsys.readouterr().err
    assert err.count("warning:") == 1
    assert expected_message("future", "mldock-future", newer) in err


def test_older_api_is_refused_too(plugin_dir, host_factory, make_dist, hook_log):
    make_dist(plugin_dir, "mldock-past", "0.0.1", {"past": "fake_past"},
              {"fake_past.py": plugin_source("past", "MLDOCK_PLUGIN_API = 0")})
    host = host_factory(quiet=True)
    assert host.plugins["past"].status is PluginStatus.FAILED
    assert expected_message("past", "mldock-past", 0) in host.plugins["past"].error


def test_matching_api_loads(plugin_dir, host_factory, make_dist, hook_log):
    make_dist(plugin_dir, "mldock-now", "1.0", {"now": "fake_now"},
              {"fake_now.py": plugin_source("now", f"MLDOCK_PLUGIN_API = {PLUGIN_API_VERSION}")})
    host = host_factory()
    assert host.plugins["now"].status is PluginStatus.ACTIVE
    assert "nowcloud" in host.registry.records("deployer")
    assert hook_log.read_text() == "hook ran"


def test_undeclared_api_is_taken_as_the_first(plugin_dir, host_factory, make_dist, hook_log):
    """Plugins written before the declaration existed keep loading (API 1 is the first one)."""
    make_dist(plugin_dir, "mldock-old", "0.1", {"old": "fake_old"},
              {"fake_old.py": plugin_source("old", "")})
    host = host_factory()
    expected = PluginStatus.ACTIVE if PLUGIN_API_VERSION == 1 else PluginStatus.FAILED
    assert host.plugins["old"].status is expected


@pytest.mark.parametrize("value", ['"1"', "1.0", "True", "None"])
def test_malformed_declaration_is_named(plugin_dir, host_factory, make_dist, hook_log, value):
    make_dist(plugin_dir, "mldock-odd", "0.1", {"odd": "fake_odd"},
              {"fake_odd.py": plugin_source("odd", f"MLDOCK_PLUGIN_API = {value}")})
    host = host_factory(quiet=True)
    info = host.plugins["odd"]
    assert info.status is PluginStatus.FAILED
    assert f"declares MLDOCK_PLUGIN_API = {ast.literal_eval(value)!r};" in info.error
    assert "must be an integer" in info.error
    assert not hook_log.exists()


def test_strict_mode_raises_the_plugin_error(plugin_dir, host_factory, make_dist, monkeypatch,
                                             hook_log):
    make_dist(plugin_dir, "mldock-future", "9.0", {"future": "fake_future2"},
              {"fake_future2.py": plugin_source("future", "MLDOCK_PLUGIN_API = 99")})
    monkeypatch.setenv("MLDOCK_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=re.escape(expected_message("future", "mldock-future",
                                                                     99))):
        host_factory()


def test_cli_lists_the_refused_plugin_and_warns_once(tmp_path):
    """Through the real ``mldock`` CLI: clean JSON on stdout, one warning line on stderr."""
    site = tmp_path / "site"
    api = PLUGIN_API_VERSION + 1
    make_dist(site, "mldock-future", "9.0", {"future": "fake_future_cli"},
              {"fake_future_cli.py": plugin_source("future", f"MLDOCK_PLUGIN_API = {api}")})
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    env.update(PYTHONPATH=str(site), MLDOCK_CACHE_DIR=str(tmp_path / "cache"),
               HOOK_LOG=str(tmp_path / "hook.log"))
    result = subprocess.run([MLDOCK, "plugins", "list", "--json"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["future"]["status"] == "failed"
    message = expected_message("future", "mldock-future", api)
    assert message in rows["future"]["error"]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and message in warnings[0]
    assert not (tmp_path / "hook.log").exists()


@pytest.mark.parametrize("module", ["mldock_s3.plugin", "mldock_aws.plugin",
                                    "mldock_mlflow.plugin"])
def test_first_party_plugins_declare_the_current_api(module):
    assert import_module(module).MLDOCK_PLUGIN_API == PLUGIN_API_VERSION


def test_plugin_template_declares_the_current_api():
    template = next((REPO / "cookiecutter" / "plugin").glob("*/src/*/plugin.py"))
    found = re.findall(r"^MLDOCK_PLUGIN_API = (\d+)", template.read_text(), flags=re.MULTILINE)
    assert found == [str(PLUGIN_API_VERSION)]
