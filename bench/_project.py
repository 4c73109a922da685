"""A benchmark project: the sklearn template rendered with mldock, and a trained model of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

MLDOCK = str(Path(sys.executable).parent / "mldock")


def mldock(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run the workspace's mldock; return its stdout (raises with stderr on failure)."""
    result = subprocess.run([MLDOCK, *args], cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, check=False)
    if result.returncode != 0:
        raise SystemExit(f"mldock {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip()


def render(root: Path, name: str | None = None) -> Path:
    """Render the sklearn template under a name of its own (``benchiris-<8 hex>``), so the images
    and containers the bench removes afterwards by that name are the bench's alone."""
    name = name or f"benchiris-{uuid.uuid4().hex[:8]}"
    mldock("init", name, "--template", "sklearn", "--no-input", cwd=root)
    return root / name


def train_local(project: Path) -> Path:
    """Train in a local process; return the model folder (holding model.joblib)."""
    run_id = mldock("train", "--quiet", "--no-container", cwd=project).splitlines()[-1]
    run = json.loads(mldock("runs", "show", run_id, "--json", cwd=project))
    return project / ".mldock" / "runs" / run["id"] / "local" / "model"
