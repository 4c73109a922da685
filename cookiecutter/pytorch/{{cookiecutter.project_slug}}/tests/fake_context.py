"""A stand-in for mldock's training context, so the tests need only torch and pytest.

It implements the part of ``mldock.runtime.context.TrainingContext`` this project uses,
cluster facts included (one rank unless a test says otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


class FakeContext:
    """Hyperparameters, channel folders, output folders, metrics, stop callbacks, cluster."""

    def __init__(self, root: Path, hyperparameters: dict[str, Any], channels: dict[str, Path],
                 *, rank: int = 0, world_size: int = 1, master_port: int | None = None):
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
        self.rank, self.world_size, self.local_rank = rank, world_size, 0
        self.master_addr, self.master_port = "127.0.0.1", master_port
        self.is_primary = rank == 0  # the one host (rank 0) whose model is published

    def param(self, name: str, default: Any = None) -> Any:
        return self.hyperparameters.get(name, default)

    def input_dir(self, name: str) -> Path:
        return self.channels[name]

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        self.metrics.append({"key": key, "value": float(value), "step": step})

    def on_stop(self, callback: Callable[[], None]) -> None:
        self.stop_callbacks.append(callback)

    def metric(self, key: str) -> float:
        return [m["value"] for m in self.metrics if m["key"] == key][-1]
