"""Test helpers: ``src`` on the import path, and a stand-in for mldock's training context.

The fake context implements the part of ``mldock.runtime.context.TrainingContext`` this project
uses, so the tests need only the project's own requirements and pytest (not mldock).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR / "src"))


class FakeContext:
    """Hyperparameters, channel folders, output folders, metrics and stop callbacks."""

    def __init__(self, root: Path, hyperparameters: dict[str, Any], channels: dict[str, Path]):
        self.hyperparameters = dict(hyperparameters)
        self.channels = dict(channels)
        self.model_dir = root / "model"
        self.output_dir = root / "output"
        self.checkpoint_dir = root / "checkpoints"
        for folder in (self.model_dir, self.output_dir, self.checkpoint_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.metrics: list[dict[str, Any]] = []
        self.stop_callbacks: list[Callable[[], None]] = []
        self.platform = "local"
        self.run_id = "test-run"
        self.is_primary = True  # the one host (rank 0) whose model is published

    def param(self, name: str, default: Any = None) -> Any:
        return self.hyperparameters.get(name, default)

    def input_dir(self, name: str) -> Path:
        return self.channels[name]

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        self.metrics.append({"key": key, "value": float(value), "step": step})

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def on_stop(self, callback: Callable[[], None]) -> None:
        self.stop_callbacks.append(callback)

    def metric(self, key: str) -> float:
        return [m["value"] for m in self.metrics if m["key"] == key][-1]


@pytest.fixture
def make_context(tmp_path: Path):
    """Build a context whose ``train`` channel holds a copy of the project's data folder."""

    def make(**hyperparameters: Any) -> FakeContext:
        channel = tmp_path / "input" / "train"
        if not channel.exists():
            shutil.copytree(PROJECT_DIR / "data", channel)
        return FakeContext(tmp_path, hyperparameters, {"train": channel})

    return make
