"""Peer tools for side-by-side benchmarks, each in its own virtual environment under bench/.venvs.

Peers are installed on first use with uv (bytecode compiled, so start-up is not penalised by
recompiling), never into the workspace environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

VENVS = Path(__file__).resolve().parent / ".venvs"


def peer_venv(name: str, *requirements: str) -> Path:
    """A virtual environment holding ``requirements``; created on first use. Returns its bin/."""
    venv = VENVS / name
    bin_dir = venv / "bin"
    marker = venv / ".installed"
    wanted = "\n".join(requirements)
    if marker.exists() and marker.read_text() == wanted:
        return bin_dir
    uv = shutil.which("uv")
    if uv is None:
        sys.exit("bench needs uv on PATH (./run installs it)")
    env = {**os.environ, "UV_COMPILE_BYTECODE": "1"}
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True,
                   env=env)
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(bin_dir / "python"),
                    *requirements], check=True, env=env)
    marker.write_text(wanted)
    return bin_dir
