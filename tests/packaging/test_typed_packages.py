"""Type information ships with every package: ``py.typed`` in each wheel, static ``__all__``.

A type checker trusts a package's inline annotations only when the installed package holds
``py.typed`` (PEP 561), and reads ``__all__`` only when it is a literal list of strings; a computed
``__all__`` silently hides the public API from it.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {
    "core": REPO / "core" / "src" / "mldock",
    "plugins/s3": REPO / "plugins" / "s3" / "src" / "mldock_s3",
    "plugins/aws": REPO / "plugins" / "aws" / "src" / "mldock_aws",
    "plugins/mlflow": REPO / "plugins" / "mlflow" / "src" / "mldock_mlflow",
}
INITS = sorted(init for root in PACKAGES.values() for init in root.rglob("__init__.py")
               if "templates" not in init.relative_to(root).parts)


def _static_all(init: Path) -> list[str] | None:
    """The literal ``__all__`` of ``init``; fails the test if it is missing or computed."""
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == "__all__":
            value = node.value
            assert isinstance(value, ast.List | ast.Tuple), f"{init}: __all__ is computed"
            assert all(isinstance(e, ast.Constant) and isinstance(e.value, str)
                       for e in value.elts), f"{init}: __all__ holds something other than strings"
            return [e.value for e in value.elts]  # type: ignore[attr-defined]  # checked above
    return None


@pytest.mark.parametrize("init", INITS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_package_has_a_static_all(init):
    names = _static_all(init)
    assert names is not None, f"{init} has no __all__"
    assert len(names) == len(set(names)), f"{init}: duplicate names in __all__"


def test_mldock_all_lists_exactly_the_lazy_exports_and_each_resolves():
    code = ("import mldock, json; print(json.dumps([sorted(mldock.__all__),"
            " sorted(['PLUGIN_API_VERSION', '__version__', *mldock._EXPORTS]),"
            " [n for n in mldock.__all__ if not hasattr(mldock, n)]]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    listed, exported, missing = __import__("json").loads(out)
    assert listed == exported
    assert missing == []


@pytest.mark.slow
@pytest.mark.parametrize("project", sorted(PACKAGES))
def test_wheel_ships_py_typed(project, tmp_path):
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH (./run installs it)")
    subprocess.run([uv, "build", "--wheel", "-q", "-o", str(tmp_path), str(REPO / project)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("*.whl"))
    package = PACKAGES[project].name
    with zipfile.ZipFile(wheel) as archive:
        assert f"{package}/py.typed" in archive.namelist()
