"""Shell completion works through the real console script, and ``python -m mldock`` runs the CLI.

The bash test does what bash does on <Tab>: it sources the script ``mldock --show-completion``
prints, sets ``COMP_WORDS``/``COMP_CWORD`` and calls the completion function, which runs the
installed ``mldock`` with ``_MLDOCK_COMPLETE=complete_bash``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import run_cli

BIN = Path(sys.executable).parent
BASH = shutil.which("bash") or "bash"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLDOCK_", "_MLDOCK"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # the workspace's console script first
    return env


def _bash(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([BASH, "-c", script], check=False, env=_env(), capture_output=True,
                          text=True, timeout=120)


def _completion_script() -> str:
    # run under bash so that the shell detection sees bash as the parent process
    result = _bash("mldock --show-completion")
    assert result.returncode == 0, result.stderr
    assert "_MLDOCK_COMPLETE=complete_bash" in result.stdout
    return result.stdout


def _complete(script: str, *words: str) -> list[str]:
    """What bash would offer for the last of ``words`` (``COMPREPLY``), one entry per line."""
    quoted = " ".join(f"'{w}'" for w in words)
    result = _bash(f"{script}\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
                   "_mldock_completion mldock\nprintf '%s\\n' \"${COMPREPLY[@]}\"")
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


@pytest.fixture(scope="module", name="script")
def script_fixture() -> str:
    assert (BIN / "mldock").exists(), "the mldock console script is installed in the environment"
    return _completion_script()


def test_bash_completes_a_command(script: str) -> None:
    assert _complete(script, "mldock", "tra") == ["train"]


def test_bash_completes_subcommands_and_options(script: str) -> None:
    assert set(_complete(script, "mldock", "runs", "")) >= {"list", "show", "compare", "export"}
    options = _complete(script, "mldock", "train", "--")
    assert "--no-container" in options and "--param" in options
    # completion options belong to the root command only
    assert "--show-completion" not in options


def test_bash_completes_nothing_for_an_unknown_prefix(script: str) -> None:
    assert _complete(script, "mldock", "zzz") == []


def test_help_lists_the_completion_options() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


def test_python_dash_m_mldock_runs_the_cli() -> None:
    env = _env()
    result = subprocess.run([sys.executable, "-m", "mldock", "--version"], check=False,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("mldock-core ")
    # and errors the same way as the console script: one line, the usage exit code
    bad = subprocess.run([sys.executable, "-m", "mldock", "no-such-command"], check=False,
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_install_completion_writes_the_script_where_bash_reads_it(tmp_path: Path) -> None:
    env = {**_env(), "HOME": str(tmp_path)}
    result = subprocess.run([BASH, "-c", "mldock --install-completion"], check=False, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    script = tmp_path / ".bash_completions" / "mldock.sh"
    assert "_MLDOCK_COMPLETE=complete_bash" in script.read_text()
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()
    # a new interactive-like shell that reads .bashrc completes through it
    script_text = (f"source {tmp_path / '.bashrc'}\nCOMP_WORDS=(mldock depl); COMP_CWORD=1\n"
                   "_mldock_completion mldock\nprintf '%s\\n' \"${COMPREPLY[@]}\"")
    check = subprocess.run(
        [BASH, "-c", script_text], check=False, env=env, capture_output=True, text=True,
        timeout=120)
    assert check.stdout.split() == ["deploy"], check.stderr
