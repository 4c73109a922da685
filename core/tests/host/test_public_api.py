"""First-party plugins import only mldock's public API: what a third-party plugin may use too.

The public modules are the package root (``from mldock import …``) and the modules listed here;
``mldock.local``, ``mldock.cli``, ``mldock.host``, ``mldock.session`` and the rest are core's
own, free to change. A plugin needing one of them means something should be made public.
"""

from __future__ import annotations

import ast
from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"

PUBLIC = ("mldock", "mldock.cas", "mldock.config.plugin_config", "mldock.errors",
          "mldock.interfaces", "mldock.markers", "mldock.records", "mldock.runtime.names",
          "mldock.testing", "mldock.trees")


def _is_public(module: str) -> bool:
    return module == "mldock" or any(module == p or module.startswith(p + ".")
                                     for p in PUBLIC if p != "mldock")


def _mldock_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        found += [(node.lineno, n) for n in names if n == "mldock" or n.startswith("mldock.")]
    return found


def test_first_party_plugins_use_only_the_public_api():
    sources = sorted(PLUGINS.glob("*/src/**/*.py"))
    assert len(sources) > 20  # the three first-party plugins are here
    offenders = [f"{path.relative_to(PLUGINS)}:{line}: {module}" for path in sources
                 for line, module in _mldock_imports(path) if not _is_public(module)]
    assert offenders == []


def test_the_check_tells_private_from_public():
    assert _is_public("mldock.cas.layout") and _is_public("mldock")
    assert not _is_public("mldock.local.storage") and not _is_public("mldock.cli.output")
    assert not _is_public("mldock.castle")
