"""Where a run came from: the project's git commit and whether the work tree was dirty."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_state(project_dir: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git checkout holding ``project_dir``; (None, None) outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_dir, capture_output=True,
                                text=True, timeout=10, check=False)
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
                                cwd=project_dir, capture_output=True, text=True, timeout=30,
                                check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    return commit.stdout.strip(), bool(status.stdout.strip())
