"""Plugin loading: order, isolation of broken plugins, environment switches, statuses."""

from __future__ import annotations

import pytest
from mldock.errors import PluginError, UnknownBackendError
from mldock.host.loader import BUILTIN_PLUGINS, PluginStatus


def test_builtins_load_first_in_declared_order(host_factory):
    host = host_factory(use_entry_points=False)
    names = [p.name for p in host.plugins.values()]
    assert names == [name for name, _ in BUILTIN_PLUGINS]
    assert all(p.status is PluginStatus.ACTIVE and p.builtin for p in host.plugins.values())


def test_entry_point_plugin_is_discovered_and_provides_backends(plugin_dir, host_factory,
                                                                make_dist, good_plugin):
    make_dist(plugin_dir, "mldock-fake", "1.2.3", {"fake": "fake_good"},
              {"fake_good.py": good_plugin})
    host = host_factory()
    info = host.plugins["fake"]
    assert (info.distribution, info.version, info.status) == ("mldock-fake", "1.2.3",
                                                              PluginStatus.ACTIVE)
    assert host.registry.by_scheme("storage", "fakes3://bucket/x").name == "fakes3"
    assert host.registry.provides()["fake"] == {"deployer": ["fakecloud"], "storage": ["fakes3"]}


def test_import_error_marks_plugin_failed_and_others_still_load(plugin_dir, host_factory, capsys,
                                                                make_dist, good_plugin):
    make_dist(plugin_dir, "mldock-broken", "0.1", {"broken": "fake_broken"},
              {"fake_broken.py": "import definitely_not_a_module\n"})
    make_dist(plugin_dir, "mldock-fake", "1.0", {"fake": "fake_good"},
              {"fake_good.py": good_plugin})
    host = host_factory()
    broken = host.plugins["broken"]
    assert broken.status is PluginStatus.FAILED
    assert "ModuleNotFoundError" in broken.error and "definitely_not_a_module" in broken.traceback
    assert host.plugins["fake"].status is PluginStatus.ACTIVE
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "broken" in err and "mldock plugins doctor" in err


def test_strict_mode_reraises(plugin_dir, host_factory, monkeypatch, make_dist):
    make_dist(plugin_dir, "mldock-broken", "0.1", {"broken": "fake_broken2"},
              {"fake_broken2.py": "raise RuntimeError('boom at import')\n"})
    monkeypatch.setenv("MLDOCK_STRICT_PLUGINS", "1")
    with pytest.raises(RuntimeError, match="boom at import"):
        host_factory()


def test_misspelt_hookimpl_fails_only_that_plugin(plugin_dir, host_factory, make_dist):
    source = "from mldock import hookimpl\n@hookimpl\ndef mldock_storage():\n    return []\n"
    make_dist(plugin_dir, "mldock-typo", "0.1", {"typo": "fake_typo"}, {"fake_typo.py": source})
    host = host_factory(quiet=True)
    assert host.plugins["typo"].status is PluginStatus.FAILED
    assert "mldock_storage" in host.plugins["typo"].error


def test_hook_raising_at_registration_marks_plugin_failed(plugin_dir, host_factory, make_dist):
    source = ("from mldock import hookimpl\n@hookimpl\ndef mldock_trackers():\n"
              "    raise ValueError('bad registration')\n")
    make_dist(plugin_dir, "mldock-badreg", "0.1", {"badreg": "fake_badreg"},
              {"fake_badreg.py": source})
    host = host_factory(quiet=True)
    assert "sqlite" in host.registry.records("tracker")
    assert host.plugins["badreg"].status is PluginStatus.FAILED
    assert "bad registration" in host.plugins["badreg"].error


def test_hook_returning_wrong_record_type_is_rejected(plugin_dir, host_factory, make_dist):
    source = ("from mldock import hookimpl, BuilderRecord\n@hookimpl\ndef mldock_trackers():\n"
              "    return [BuilderRecord(name='x', summary='x', factory=print)]\n")
    make_dist(plugin_dir, "mldock-wrong", "0.1", {"wrong": "fake_wrong"}, {"fake_wrong.py": source})
    host = host_factory(quiet=True)
    assert "x" not in host.registry.records("tracker")
    assert "expected TrackerRecord" in host.plugins["wrong"].error


def test_disable_plugins_blocks_by_name(plugin_dir, host_factory, monkeypatch, make_dist,
                                        good_plugin):
    make_dist(plugin_dir, "mldock-fake", "1.0", {"fake": "fake_good"},
              {"fake_good.py": good_plugin})
    monkeypatch.setenv("MLDOCK_DISABLE_PLUGINS", "fake, local-deploy")
    host = host_factory()
    assert host.plugins["fake"].status is PluginStatus.DISABLED
    assert host.plugins["local-deploy"].status is PluginStatus.DISABLED
    assert "fake_good" not in __import__("sys").modules
    with pytest.raises(UnknownBackendError):
        host.registry.get("deployer", "local")


def test_core_commands_cannot_be_disabled(host_factory, monkeypatch):
    monkeypatch.setenv("MLDOCK_DISABLE_PLUGINS", "core-commands")
    host = host_factory(use_entry_points=False)
    assert host.plugins["core-commands"].status is PluginStatus.ACTIVE


def test_load_plugins_allows_only_named(plugin_dir, host_factory, monkeypatch, make_dist,
                                        good_plugin):
    make_dist(plugin_dir, "mldock-fake", "1.0", {"fake": "fake_good"},
              {"fake_good.py": good_plugin})
    make_dist(plugin_dir / "other", "mldock-other", "1.0", {"other": "fake_other"},
              {"fake_other.py": "x = 1\n"})
    monkeypatch.syspath_prepend(str(plugin_dir / "other"))
    monkeypatch.setenv("MLDOCK_LOAD_PLUGINS", "other")
    host = host_factory()
    assert host.plugins["fake"].status is PluginStatus.DISABLED
    assert host.plugins["other"].status is PluginStatus.ACTIVE
    assert host.plugins["local-storage"].status is PluginStatus.ACTIVE  # built-ins always load


def test_same_backend_name_from_two_distributions_names_both(plugin_dir, host_factory, make_dist,
                                                             good_plugin):
    make_dist(plugin_dir, "mldock-fake", "1.0", {"fake": "fake_good"},
              {"fake_good.py": good_plugin})
    make_dist(plugin_dir / "twin", "mldock-twin", "2.0", {"twin": "fake_twin"},
              {"fake_twin.py": good_plugin})
    import sys
    sys.path.insert(0, str(plugin_dir / "twin"))
    try:
        host = host_factory()
        with pytest.raises(PluginError) as caught:
            host.registry.get("deployer", "fakecloud")
    finally:
        sys.path.remove(str(plugin_dir / "twin"))
    assert "mldock-fake" in caught.value.message and "mldock-twin" in caught.value.message
    assert "fakecloud" in host.registry.conflicts("deployer")


def test_records_are_sorted_and_independent_of_registration_order(host_factory):
    host = host_factory(use_entry_points=False)
    names = list(host.registry.records("command"))
    assert names == sorted(names)
