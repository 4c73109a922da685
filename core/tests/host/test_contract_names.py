"""Container-contract names are written once, in ``mldock.runtime.names``: no other module of core
or of a first-party plugin spells one as a string literal (a message may still mention it)."""

from __future__ import annotations

import ast
from pathlib import Path

from mldock.runtime import names

SRC = Path(__file__).resolve().parents[2] / "src" / "mldock"
PLUGINS = Path(__file__).resolve().parents[3] / "plugins"
NAMES = {getattr(names, n) for n in names.__all__}


def test_the_module_is_standard_library_only():
    tree = ast.parse((SRC / "runtime" / "names.py").read_text())
    imported = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for a in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__"}


def test_no_module_spells_a_contract_name():
    offenders = []
    for path in [*SRC.rglob("*.py"), *PLUGINS.glob("*/src/**/*.py")]:
        if path == SRC / "runtime" / "names.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                    node.value in NAMES or node.value.startswith(names.METRIC_LINE_PREFIX + " ")):
                where = path.relative_to(SRC.parents[2])
                offenders.append(f"{where}:{node.lineno}: {node.value!r}")
    assert offenders == []
