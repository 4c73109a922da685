"""``mldock init`` leaves nothing in the temporary folder (cookiecutter's hooks used to)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MLDOCK = str(Path(sys.executable).parent / "mldock")


def test_init_leaves_no_temporary_files(tmp_path):
    """Fails when cookiecutter's hook scripts (written with delete=False) stay in $TMPDIR."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    env["TMPDIR"] = str(scratch)
    result = subprocess.run([MLDOCK, "init", "tidy", "--template", "sklearn", "--no-input"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tidy" / "mldock.toml").is_file()
    assert sorted(p.name for p in scratch.iterdir()) == []
