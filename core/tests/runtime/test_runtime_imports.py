"""The runtime stays light: no CLI, plugin, config or cloud libraries on the serving/training path.

Also checked: it needs nothing outside ``mldock/__init__.py`` and ``mldock/runtime/`` (the only
files the builder copies into the image); the ``image_root`` fixture runs it from such a copy.
"""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("typer", "click", "docker", "pluggy", "pydantic", "rich", "boto3", "botocore",
             "azure", "google", "mlflow", "numpy", "pandas")
RUNTIME_MODULES = ("mldock.runtime.__main__", "mldock.runtime.server", "mldock.runtime.train",
                   "mldock.runtime.app", "mldock.runtime.context", "mldock.runtime.predictor")


def _imported(stderr: str) -> set[str]:
    """Module names from ``-X importtime`` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def _offenders(names: set[str]) -> set[str]:
    return {n for n in names if n.split(".")[0] in FORBIDDEN}


def test_help_imports_nothing_heavy():
    """Run in the full venv (typer, pydantic, docker… are installed there) so leaks would show."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "mldock.runtime", "--help"],
                            check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    names = _imported(result.stderr)
    assert "mldock.runtime.__main__" in names or "mldock.runtime" in names
    assert not _offenders(names)


def test_server_and_training_modules_import_nothing_heavy():
    code = "import " + ", ".join(RUNTIME_MODULES)
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                            check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    names = _imported(result.stderr)
    assert set(RUNTIME_MODULES) <= names
    assert not _offenders(names)
    # only the runtime's own modules and the lazy package root from mldock
    assert {n for n in names if n.startswith("mldock")} <= {"mldock"} | {
        n for n in names if n.startswith("mldock.runtime")}


def test_runtime_works_from_the_image_layout_alone(rt):
    """``python -S`` + a copy of mldock/__init__.py and mldock/runtime/ only: all modules import."""
    code = ("import json, sys, " + ", ".join(RUNTIME_MODULES) + ", mldock.runtime.tensors, "
            "mldock.runtime.modeldir, mldock.runtime.gcs; "
            "print(json.dumps([mldock.runtime.__file__,"
            " sorted(m for m in sys.modules if m.startswith('mldock'))]))")
    result = subprocess.run([sys.executable, "-S", "-c", code], check=False, env=rt.env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    location, modules = json.loads(result.stdout)
    assert location.startswith(str(rt.image_root))
    assert all(m == "mldock" or m.startswith("mldock.runtime") for m in modules)
