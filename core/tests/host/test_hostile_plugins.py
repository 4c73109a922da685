"""Hostile plugins, installed as real distributions and run through the real ``mldock`` CLI.

Each case here broke every command before (issue 10, items 3-5): a plugin that calls
``sys.exit``, prints on import, takes seconds to import, takes over a core command, or registers a
backend under a built-in's name. The CLI must isolate it: one warning on stderr, clean stdout,
and only the commands that really need the plugin affected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import make_dist

MLDOCK = str(Path(sys.executable).parent / "mldock")

EXITS_ON_IMPORT = "import sys\nsys.exit(3)\n"

EXITS_IN_HOOK = '''
import sys
from mldock import hookimpl

@hookimpl
def mldock_deployers():
    sys.exit(4)
'''

PRINTS_ON_IMPORT = '''
print("hello from a chatty plugin")
from mldock import hookimpl, DeployerRecord

@hookimpl
def mldock_deployers():
    print("registering")
    return [DeployerRecord(name="chatty", summary="prints a lot", factory=lambda ctx: None)]
'''

COUNTS_IMPORTS = '''
import os, pathlib
marker = pathlib.Path(os.environ["IMPORT_LOG"])
with marker.open("a") as log:
    log.write("imported\\n")
from mldock import hookimpl, CommandRecord, DeployerRecord

def _group():
    import typer
    app = typer.Typer(help="A plugin command group.")

    @app.command()
    def hello() -> None:
        print("hello from slowcmd")

    @app.command()
    def bye() -> None:
        print("bye")
    return app

@hookimpl
def mldock_commands():
    return [CommandRecord(name="slowcmd", summary="Says hello, slowly.", factory=_group)]

@hookimpl
def mldock_deployers():
    return [DeployerRecord(name="slowcloud", summary="a slow cloud", factory=lambda ctx: None)]
'''

HIJACKS_TRAIN = '''
import typer
from mldock import hookimpl, CommandRecord

def _hijack():
    app = typer.Typer()

    @app.callback(invoke_without_command=True)
    def steal() -> None:
        print("HIJACKED")
    return app

@hookimpl(trylast=True)
def mldock_commands():
    return [CommandRecord(name="train", summary="Not mldock's train.", factory=_hijack)]
'''

CLAIMS_LOCAL_STORAGE = '''
from mldock import hookimpl, StorageRecord

def make(ctx):
    raise RuntimeError("never built")

@hookimpl
def mldock_storages():
    return [StorageRecord(name="local", summary="an impostor", schemes=("file",), factory=make)]
'''

TRAIN = '''
def train(ctx):
    import pathlib
    (pathlib.Path(ctx.model_dir) / "model.txt").write_text("ok")
'''


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    return root


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "proj"
    (folder / "src" / "proj").mkdir(parents=True)
    (folder / "src" / "proj" / "__init__.py").write_text("")
    (folder / "src" / "proj" / "train.py").write_text(TRAIN)
    (folder / "mldock.toml").write_text(
        '[project]\nname = "proj"\ntrain = "proj.train:train"\npredictor = "proj.train:train"\n'
        'source = "src"\n')
    return folder


def cli(*args: str, site: Path, cwd: Path, extra_env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    env["PYTHONPATH"] = str(site)
    env["MLDOCK_CACHE_DIR"] = str(site.parent / "cache")
    env.update(extra_env or {})
    return subprocess.run([MLDOCK, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def plugins_json(site: Path, cwd: Path, extra_env: dict[str, str] | None = None,
                 ) -> dict[str, dict]:
    result = cli("plugins", "list", "--json", site=site, cwd=cwd, extra_env=extra_env)
    return {row["name"]: row for row in json.loads(result.stdout)}


@pytest.mark.parametrize("source", [EXITS_ON_IMPORT, EXITS_IN_HOOK], ids=["import", "hook"])
def test_plugin_calling_sys_exit_does_not_end_the_cli(site, tmp_path, source):
    """Fails when SystemExit from a plugin escapes the host: every command exits silently."""
    make_dist(site, "mldock-quitter", "1.0", {"quitter": "fake_quitter"},
              {"fake_quitter.py": source})
    result = cli("--help", site=site, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    listing = cli("plugins", "list", "--json", site=site, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    row = {r["name"]: r for r in json.loads(listing.stdout)}["quitter"]
    assert row["status"] == "failed"
    assert "SystemExit" in row["error"]
    assert "'quitter' (mldock-quitter) failed to load" in listing.stderr


def test_plugin_printing_keeps_json_output_clean(site, tmp_path):
    """Fails when a plugin's print reaches stdout: ``--json`` no longer parses."""
    make_dist(site, "mldock-chatty", "1.0", {"chatty": "fake_chatty"},
              {"fake_chatty.py": PRINTS_ON_IMPORT})
    result = cli("plugins", "list", "--json", site=site, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}  # stdout is pure JSON
    assert rows["chatty"]["provides"] == {"deployer": ["chatty"]}
    assert "hello from a chatty plugin" in result.stderr
    assert "registering" in result.stderr


def test_plugin_is_imported_only_when_a_command_needs_it(site, project):
    """Fails when ``--help`` or a command that needs no plugin imports every plugin (a plugin
    taking 3 s to import made ``--help`` take 3 s). The first run learns what the plugin provides;
    later runs list its command group without importing it, and import it to run it."""
    log = site.parent / "imports.log"
    env = {"IMPORT_LOG": str(log)}
    make_dist(site, "mldock-slow", "1.0", {"slow": "fake_slow"}, {"fake_slow.py": COUNTS_IMPORTS})

    def imports() -> int:
        return len(log.read_text().splitlines()) if log.exists() else 0

    first = cli("--help", site=site, cwd=project, extra_env=env)
    assert first.returncode == 0 and "slowcmd" in first.stdout
    assert imports() == 1  # not seen before: imported once to learn what it provides
    second = cli("--help", site=site, cwd=project, extra_env=env)
    assert second.returncode == 0 and "Says hello, slowly." in second.stdout
    assert imports() == 1  # listed from the cache, not imported
    runs = cli("runs", "list", "--json", site=site, cwd=project, extra_env=env)
    assert runs.returncode == 0, runs.stderr
    assert json.loads(runs.stdout) == []
    assert imports() == 1  # the built-in tracker needs no plugin
    hello = cli("slowcmd", "hello", site=site, cwd=project, extra_env=env)
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout.strip() == "hello from slowcmd"
    assert imports() == 2  # running its command imports it


def test_edited_plugin_is_looked_at_again(site, project):
    """Fails when the cache outlives the code: an editable plugin gaining a deployer must be
    found without reinstalling it."""
    log = site.parent / "imports.log"
    env = {"IMPORT_LOG": str(log)}
    make_dist(site, "mldock-slow", "1.0", {"slow": "fake_slow"}, {"fake_slow.py": COUNTS_IMPORTS})
    assert cli("--help", site=site, cwd=project, extra_env=env).returncode == 0
    module = site / "fake_slow.py"
    module.write_text(module.read_text().replace('"slowcloud"', '"fastcloud"') + "\n# edited\n")
    (project / "mldock.toml").write_text((project / "mldock.toml").read_text()
                                         + '\n[deploy]\ndeployer = "fastcloud"\n')
    checked = cli("config", "validate", site=site, cwd=project, extra_env=env)
    assert checked.returncode == 0, checked.stderr
    assert plugins_json(site, project, env)["slow"]["provides"]["deployer"] == ["fastcloud"]


def test_plugin_cannot_take_over_a_core_command(site, project):
    """Fails when a plugin's ``train`` (registered with trylast) replaces mldock's own."""
    make_dist(site, "mldock-hijack", "6.6", {"hijack": "fake_hijack"},
              {"fake_hijack.py": HIJACKS_TRAIN})
    result = cli("train", "--no-container", site=site, cwd=project)
    assert "HIJACKED" not in result.stdout
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip().splitlines()[-1]
    assert len(run_id) > 8
    assert "registers the command 'train', which is reserved" in result.stderr
    assert "mldock-hijack" in result.stderr
    rows = plugins_json(site, project)
    assert rows["hijack"]["status"] == "failed"
    assert "mldock-hijack" in rows["hijack"]["error"]


def test_backend_named_like_a_builtin_fails_only_commands_that_use_it(site, project):
    """Fails when a plugin registering ``local`` storage stops every command (``runs list``
    included); only a command that stores something may fail, naming both distributions."""
    make_dist(site, "mldock-impostor", "1.0", {"impostor": "fake_impostor"},
              {"fake_impostor.py": CLAIMS_LOCAL_STORAGE})
    listed = cli("runs", "list", "--json", site=site, cwd=project)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    validated = cli("config", "validate", site=site, cwd=project)
    assert validated.returncode == 0, validated.stderr
    trained = cli("train", "--no-container", site=site, cwd=project)
    assert trained.returncode != 0
    lines = [line for line in trained.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, trained.stderr
    assert "mldock-core" in lines[0] and "mldock-impostor" in lines[0]
    assert "Traceback" not in trained.stderr
    after = cli("runs", "list", "--json", site=site, cwd=project)
    assert json.loads(after.stdout) == []  # refused before a run was created or trained


def test_keyboard_interrupt_in_a_plugin_stops_the_command(site, tmp_path):
    """Ctrl-C belongs to the user: a KeyboardInterrupt raised while a plugin loads stops the
    command with exit 130 instead of being swallowed as a plugin failure."""
    make_dist(site, "mldock-ctrlc", "1.0", {"ctrlc": "fake_ctrlc"},
              {"fake_ctrlc.py": "raise KeyboardInterrupt\n"})
    result = cli("plugins", "list", site=site, cwd=tmp_path)
    assert result.returncode == 130
    assert "interrupted" in result.stderr
