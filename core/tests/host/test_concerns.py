"""One table of concerns feeds the registry, the config loader and the session; the session is the
only place that builds a backend, and hands it facts, not core's config model."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest
from mldock import hookspecs
from mldock.concerns import BACKEND_CONCERNS, CONCERNS, SECTION_CONCERN, selection
from mldock.config import load_config
from mldock.config.model import MldockConfig
from mldock.host.loader import PluginHost
from mldock.interfaces import ArtifactStore, Builder, Deployer, Tracker
from mldock.records import FactoryContext, StorageRecord, TrackerRecord
from mldock.session import Session

SRC = Path(__file__).resolve().parents[2] / "src" / "mldock"
PLUGINS = Path(__file__).resolve().parents[3] / "plugins"


@pytest.fixture(scope="module")
def registry():
    return PluginHost(use_entry_points=False, quiet=True).registry


def test_every_registration_hook_is_in_the_table():
    hooks = {n for n in dir(hookspecs) if n.startswith("mldock_") and n.endswith("s")
             and callable(getattr(hookspecs, n)) and not n.startswith("mldock_before")}
    registration = {row.hook for row in CONCERNS.values()}
    assert registration <= hooks
    assert {"mldock_builders", "mldock_storages", "mldock_trackers", "mldock_deployers",
            "mldock_commands", "mldock_templates"} == registration


def test_sections_and_interfaces_come_from_the_table():
    assert SECTION_CONCERN == {"build": "builder", "storage": "storage", "tracking": "tracker",
                               "deploy": "deployer"}
    assert BACKEND_CONCERNS == ("builder", "storage", "tracker", "deployer")
    assert [CONCERNS[c].load_interface() for c in BACKEND_CONCERNS] == [
        Builder, ArtifactStore, Tracker, Deployer]
    for section in SECTION_CONCERN:
        assert section in MldockConfig.model_fields


@pytest.mark.parametrize(("data", "concern", "key", "name", "uri"), [
    ({}, "builder", ("build", "builder"), "docker", None),
    ({}, "storage", ("storage", "uri"), None, ".mldock/artifacts"),
    ({}, "tracker", ("tracking", "uri"), None, "sqlite:///.mldock/runs.db"),
    ({"tracking": {"backend": "mlflow", "uri": "http://h:5000"}}, "tracker",
     ("tracking", "backend"), "mlflow", None),
    ({"deploy": {"deployer": "sagemaker"}}, "deployer", ("deploy", "deployer"), "sagemaker", None),
])
def test_selection_names_the_key_that_chose(data, concern, key, name, uri):
    model = MldockConfig.model_validate({"project": {"name": "p", "train": "a:b",
                                                     "predictor": "a:c"}, **data})
    chosen = selection(concern, model)
    assert (chosen.key, chosen.name, chosen.uri) == (key, name, uri)


def test_selection_refuses_a_concern_without_backends():
    with pytest.raises(ValueError, match="not a backend concern"):
        selection("command", None)


def _project(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "mldock.toml").write_text(textwrap.dedent("""\
        [project]
        name = "facts-demo"
        train = "m:train"
        predictor = "m:Predictor"

        [build]
        image = "team/facts"
        """) + extra)
    return tmp_path


def test_the_session_hands_factories_facts_not_the_config(tmp_path, registry):
    project = _project(tmp_path)
    session = Session(load_config(project, registry=registry, env=""), registry)
    record = session.storage_record
    assert isinstance(record, StorageRecord) and record.name == "local"
    context = session.context(record, session.config.storage_uri)
    assert not hasattr(context, "config")
    assert context.project == "facts-demo" and context.project_dir == project
    assert context.image == "team/facts" and context.platform == "linux/amd64"
    assert context.storage_uri == (project / ".mldock" / "artifacts").resolve().as_uri()
    assert context.tracking_uri == f"sqlite:///{(project / '.mldock' / 'runs.db').resolve()}"
    assert context.config_file == "mldock.toml" and context.env is None
    assert context.open_store is not None
    other = context.open_store((tmp_path / "elsewhere").as_uri())
    assert isinstance(other, ArtifactStore)
    assert isinstance(session.tracker_record, TrackerRecord)
    assert isinstance(session.backend("storage"), ArtifactStore)
    assert session.selected("deployer").name == "local"


def test_options_as_gives_the_typed_options():
    from pydantic import BaseModel

    class Options(BaseModel):
        depth: int = 3

    assert FactoryContext().options_as(Options) == Options()
    assert FactoryContext(options=Options(depth=5)).options_as(Options).depth == 5
    with pytest.raises(TypeError, match="expected Options"):
        FactoryContext(options={"depth": 5}).options_as(Options)
    assert FactoryContext(project_dir=Path("/x/some-project")).project == "some-project"


def _builds(path: Path) -> list[int]:
    """Lines of ``path`` building a backend: ``X.factory(…)`` or ``X.build(FactoryContext(…))``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        arg = node.args[0] if node.args else None
        called = getattr(arg.func, "id", getattr(arg.func, "attr", "")) if isinstance(
            arg, ast.Call) else ""
        by_context = node.func.attr == "build" and called == "FactoryContext"
        if node.func.attr == "factory" or by_context:
            found.append(node.lineno)
    return found


def test_only_the_session_builds_backends():
    """Backends are built in session.py only. Exceptions: a command group's factory (the CLI's
    lazy group and the registry's deferred command are not backends), and the conformance kit in
    ``mldock.testing``, which builds the backend under test from its record on purpose."""
    allowed = {SRC / "session.py", SRC / "records.py", SRC / "cli" / "lazy.py",
               SRC / "host" / "registry.py"}  # records.py: BackendRecord.build, what Session calls
    offenders = []
    for path in [*SRC.rglob("*.py"), *PLUGINS.glob("*/src/**/*.py")]:
        if path in allowed or (SRC / "testing") in path.parents:
            continue
        offenders.extend(f"{path}:{line}" for line in _builds(path))
    assert offenders == []


def test_core_never_imports_the_cli():
    offenders = []
    for path in SRC.rglob("*.py"):
        if (SRC / "cli") in path.parents or path in (SRC / "builtin" / "commands.py",
                                                     SRC / "__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mldock.cli"):
                offenders.append(f"{path}:{node.lineno}")
            if isinstance(node, ast.Import) and any(a.name.startswith("mldock.cli")
                                                    for a in node.names):
                offenders.append(f"{path}:{node.lineno}")
    assert offenders == []


def test_plugins_do_not_reach_into_the_config_model():
    offenders = [str(p) for p in PLUGINS.glob("*/src/**/*.py")
                 if "context.config." in p.read_text() or "ctx.config." in p.read_text()]
    assert offenders == []
