"""One test per hook: a plugin implementing it is heard, and a failing implementation is contained.

``test_meta.py`` checks that every hookspec has a ``test_hook_<name>`` here and a documented
signature in ``docs/hooks.md``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mldock import (
    BuilderRecord,
    CommandRecord,
    DeployerRecord,
    StorageRecord,
    TemplateRecord,
    TrackerRecord,
    hookimpl,
)
from mldock.host.loader import PluginHost
from mldock.interfaces import BuildRequest, BuildResult, Deployment, RunRecord, RunStatus


def _host_with(plugin: object, name: str = "test-plugin") -> PluginHost:
    host = PluginHost(use_entry_points=False, quiet=True)
    host.pm.register(plugin, name=name)
    from mldock.host.loader import PluginInfo

    host.plugins[name] = PluginInfo(name=name, distribution="test-dist", version="0",
                                    module=__name__, builtin=False)
    return host


def _factory(ctx):
    return ctx


def test_hook_mldock_builders():
    class Plugin:
        @hookimpl
        def mldock_builders(self):
            return [BuilderRecord(name="kaniko", summary="in-cluster builds", factory=_factory)]

    registry = _host_with(Plugin()).registry
    assert registry.get("builder", "kaniko").summary == "in-cluster builds"
    assert registry.records("builder")["kaniko"].distribution == "test-dist"


def test_hook_mldock_storages():
    class Plugin:
        @hookimpl
        def mldock_storages(self):
            return [StorageRecord(name="mem", summary="memory", schemes=("mem",), factory=_factory)]

    assert _host_with(Plugin()).registry.by_scheme("storage", "mem://x/y").name == "mem"


def test_hook_mldock_trackers():
    class Plugin:
        @hookimpl
        def mldock_trackers(self):
            return [TrackerRecord(name="wandb", summary="W&B", schemes=("wandb",),
                                  factory=_factory)]

    assert _host_with(Plugin()).registry.by_scheme("tracker", "wandb://team/proj").name == "wandb"


def test_hook_mldock_deployers():
    class Plugin:
        @hookimpl
        def mldock_deployers(self):
            return [DeployerRecord(name="k8s", summary="Kubernetes", factory=_factory,
                                   capabilities={"serving"})]

    record = _host_with(Plugin()).registry.get("deployer", "k8s")
    assert record.capabilities == frozenset({"serving"})


def test_hook_mldock_commands():
    import typer

    sub = typer.Typer()

    @sub.command()
    def hello():
        print("hello from plugin")

    class Plugin:
        @hookimpl
        def mldock_commands(self):
            return [CommandRecord(name="hello", summary="Say hello", factory=lambda: sub)]

    records = _host_with(Plugin()).registry.records("command")
    assert records["hello"].record.summary == "Say hello"
    assert "plugins" in records  # core's own groups come through the same hook


def test_hook_mldock_templates(tmp_path):
    class Plugin:
        @hookimpl
        def mldock_templates(self):
            return [TemplateRecord(name="pytorch", summary="torch", location=str(tmp_path))]

    records = _host_with(Plugin()).registry.records("template")
    assert set(records) >= {"pytorch", "sklearn", "minimal"}


def _lifecycle_host(hook_name: str, calls: list):
    body = {
        "mldock_before_build":
            lambda self, project_dir, request: calls.append((project_dir, request)),
        "mldock_after_build": lambda self, project_dir, result: calls.append((project_dir, result)),
        "mldock_run_started": lambda self, run_id, project, platform: calls.append(
            (run_id, project, platform)),
        "mldock_run_finished": lambda self, run: calls.append(run),
        "mldock_deployed": lambda self, deployment, deployer: calls.append((deployment, deployer)),
    }[hook_name]
    plugin = type("Plugin", (), {hook_name: hookimpl(body)})()
    return _host_with(plugin)


def test_hook_mldock_before_build(tmp_path):
    calls: list = []
    request = BuildRequest(context_dir=tmp_path, dockerfile="FROM x", tag="iris:abc")
    _lifecycle_host("mldock_before_build", calls).registry.notify(
        "mldock_before_build", project_dir=tmp_path, request=request)
    assert calls == [(tmp_path, request)]


def test_hook_mldock_after_build(tmp_path):
    calls: list = []
    result = BuildResult(tag="iris:abc", image_id="sha256:1", skipped=True)
    _lifecycle_host("mldock_after_build", calls).registry.notify(
        "mldock_after_build", project_dir=tmp_path, result=result)
    assert calls == [(tmp_path, result)]


def test_hook_mldock_run_started():
    calls: list = []
    _lifecycle_host("mldock_run_started", calls).registry.notify(
        "mldock_run_started", run_id="r1", project="iris", platform="local")
    assert calls == [("r1", "iris", "local")]


def test_hook_mldock_run_finished():
    calls: list = []
    run = RunRecord(id="r1", project="iris", status=RunStatus.FINISHED, started_at=0.0)
    _lifecycle_host("mldock_run_finished", calls).registry.notify("mldock_run_finished", run=run)
    assert calls == [run]


def test_hook_mldock_deployed():
    calls: list = []
    deployment = Deployment(name="iris", url="http://127.0.0.1:8080", status="ready")
    _lifecycle_host("mldock_deployed", calls).registry.notify(
        "mldock_deployed", deployment=deployment, deployer="local")
    assert calls == [(deployment, "local")]


def test_lifecycle_hook_failure_only_warns(capsys):
    class Plugin:
        @hookimpl
        def mldock_run_started(self, run_id, project, platform):
            raise RuntimeError("notifier down")

    _host_with(Plugin(), name="noisy").registry.notify(
        "mldock_run_started", run_id="r", project="p", platform="local")
    err = capsys.readouterr().err
    assert "noisy" in err and "notifier down" in err


def test_notify_refuses_registration_hooks():
    with pytest.raises(ValueError, match="mldock_builders is not a lifecycle hook"):
        PluginHost(use_entry_points=False).registry.notify("mldock_builders")


def test_hookimpl_may_take_fewer_arguments(tmp_path):
    calls = []

    class Plugin:
        @hookimpl
        def mldock_after_build(self, result):
            calls.append(result.tag)

    _host_with(Plugin()).registry.notify(
        "mldock_after_build", project_dir=Path(tmp_path),
        result=BuildResult(tag="t:1", image_id="sha256:x"))
    assert calls == ["t:1"]
