"""Helpers shared by the contract classes: capability skips and small file fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def backend_label(contract: object) -> str:
    """How skip messages name the backend: ``backend_name`` if set, else the test class name."""
    return getattr(contract, "backend_name", None) or type(contract).__name__


def require_capability(contract: object, flag: str, capability: str) -> None:
    """Skip with the standard reason unless the contract subclass sets ``flag = True``."""
    if not getattr(contract, flag, False):
        pytest.skip(f"{backend_label(contract)} does not declare capability {capability}:"
                    f" set {flag} = True if it does")


def snapshot(root: Path) -> dict[str, bytes]:
    """``{relpath: bytes}`` of every file under ``root``: compares two trees in one assert."""
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def make_sample_tree(root: Path) -> Path:
    """A tree with what usually breaks stores: nesting, an empty file, binary and unicode names."""
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "données").mkdir()
    (root / "top.txt").write_text("hello\n")
    (root / "empty.bin").write_bytes(b"")
    (root / "nested" / "deeper" / "all-bytes.bin").write_bytes(bytes(range(256)) * 64)
    (root / "nested" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "nested" / "run.sh", 0o755)
    (root / "données" / "résumé ✓.txt").write_text("unicode ✓ inside\n", encoding="utf-8")
    return root
