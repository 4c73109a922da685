"""Each plugin package installed alone (with mldock-core and its declared extras) in a fresh venv,
from wheels built in dist/, passes its own tests. Catches undeclared dependencies and files missing
from the wheel, which the shared workspace environment would hide.

Docker-marked tests are left to the workspace run (they exercise the same code on the engine);
everything else of the plugin's suite runs here against its emulator, as the plugin's own
fixtures start it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGINS = sorted(p.parent.name for p in (REPO / "plugins").glob("*/pyproject.toml"))
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH (./run installs it)")
    dist = tmp_path_factory.mktemp("dist")
    for package in [REPO / "core", *(REPO / "plugins" / name for name in PLUGINS)]:
        subprocess.run([uv, "build", "--wheel", "-q", "-o", str(dist), str(package)], check=True)
    return dist


@pytest.mark.parametrize("plugin", PLUGINS)
def test_plugin_alone_in_a_fresh_venv(plugin, wheels, tmp_path):
    uv = shutil.which("uv")
    meta = tomllib.loads((REPO / "plugins" / plugin / "pyproject.toml").read_text())["project"]
    extras = ",".join(sorted(meta.get("optional-dependencies", {})))
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    wheel = next(wheels.glob(f"{meta['name'].replace('-', '_')}-*.whl"))
    target = f"{wheel}[{extras}]" if extras else str(wheel)
    subprocess.run([uv, "pip", "install", "-q", "--python", str(python), "--find-links",
                    str(wheels), target], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not docker",
         "--import-mode=importlib", "--rootdir", str(REPO / "plugins" / plugin),
         str(REPO / "plugins" / plugin / "tests")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
