"""``mldock-model.json``: the small manifest written into a model directory after training.

It names the predictor and the run, and lists every file with its sha256, so the server can find
the model root however deep a platform mounts it and a reader can check nothing was altered.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from mldock.runtime import MANIFEST_NAME

FORMAT = 1


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_tree(root: Path) -> dict[str, str]:
    """``{relative posix path: sha256}`` of every regular file under ``root`` but the manifest."""
    files: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.name != MANIFEST_NAME:
            files[path.relative_to(root).as_posix()] = sha256_file(path)
    return files


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_manifest(model_dir: Path, *, predictor: str | None, run_id: str | None,
                   extra: dict[str, Any] | None = None) -> Path:
    """Write the manifest atomically (temp file + rename) and return its path."""
    data: dict[str, Any] = {
        "format": FORMAT,
        "predictor": predictor,
        "run_id": run_id,
        "created_at": utc_now(),
        **(extra or {}),
        "files": hash_tree(model_dir),
    }
    target = model_dir / MANIFEST_NAME
    tmp = model_dir / f".{MANIFEST_NAME}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def read_manifest(model_root: Path) -> dict[str, Any]:
    """The manifest of a model root, or an empty dict when there is none or it is unreadable."""
    try:
        data = json.loads((model_root / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
