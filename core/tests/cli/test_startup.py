"""Start-up stays light: no cloud SDK, docker, mlflow, numpy or pandas for --help or plugins list.

``python -X importtime`` lists every module imported; the check runs with every package of the
workspace installed, so a plugin that imports its SDK at module level fails it.
"""

from __future__ import annotations

import pytest

HEAVY = ("docker", "boto3", "botocore", "azure", "google", "mlflow", "numpy", "pandas",
         "cookiecutter", "requests")


def imported_modules(stderr: str) -> set[str]:
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


@pytest.mark.parametrize("args", [("--help",), ("plugins", "list"), ("plugins", "list", "--json"),
                                  ("--version",)])
def test_no_heavy_imports(cli, args):
    result = cli(*args, python_args=("-X", "importtime"))
    assert result.returncode == 0, result.stderr[-2000:]
    modules = imported_modules(result.stderr)
    assert "mldock" in modules and "typer" in modules  # the measurement itself works
    heavy = sorted(m for m in modules if m in HEAVY)
    assert heavy == [], f"start-up imported {heavy}"
