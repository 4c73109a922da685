"""Test helpers: ``src`` on the import path, and contexts made of temporary folders."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_context import FakeContext  # noqa: E402 - needs the path above


@pytest.fixture
def make_context(tmp_path: Path):
    """Build a context whose ``train`` channel holds a copy of the project's data folder."""

    def make(**hyperparameters: Any) -> FakeContext:
        channel = tmp_path / "input" / "train"
        if not channel.exists():
            shutil.copytree(PROJECT_DIR / "data", channel)
        return FakeContext(tmp_path, hyperparameters, {"train": channel})

    return make
