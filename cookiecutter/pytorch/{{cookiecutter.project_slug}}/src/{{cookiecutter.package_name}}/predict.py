"""Serving: mldock's server creates ``Predictor()``, calls ``load(model_dir)`` once, then
``predict(payload)`` for each request.

``payload`` is the decoded request body: ``{"instances": [...]}`` and ``{"inputs": [...]}`` arrive
as the list inside, CSV arrives as a list of rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from {{ cookiecutter.package_name }} import MODEL_FILE, WEIGHTS_FILE
from {{ cookiecutter.package_name }}.net import build_net


class Predictor:
    """Classifies feature rows with the trained network, on the CPU."""

    def load(self, model_dir: Path) -> None:
        meta = json.loads((Path(model_dir) / MODEL_FILE).read_text())
        self.features: list[str] = list(meta["features"])
        self.classes: list[str] = list(meta["classes"])
        self.mean = torch.tensor(meta["mean"], dtype=torch.float32)
        self.std = torch.tensor(meta["std"], dtype=torch.float32)
        self.net = build_net(len(self.features), int(meta["hidden"]), len(self.classes))
        state = torch.load(Path(model_dir) / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)
        self.net.eval()

    def predict(self, payload: Any) -> list:
        """Class labels for a list of rows (lists of numbers) or of dicts keyed by feature name."""
        rows = self._rows(payload)
        if not rows:
            return []
        X = (torch.tensor(rows, dtype=torch.float32) - self.mean) / self.std
        with torch.no_grad():
            best = self.net(X).argmax(dim=1).tolist()
        return [self.classes[i] for i in best]

    def _rows(self, payload: Any) -> list[list[float]]:
        if hasattr(payload, "tolist"):
            payload = payload.tolist()  # an .npy request body arrives as a numpy array
        if isinstance(payload, dict):
            if "instances" in payload or "inputs" in payload:
                payload = payload.get("instances", payload.get("inputs"))
            else:
                payload = [payload]  # one instance given as {feature: value}
        if not isinstance(payload, list):
            raise ValueError("expected a list of rows or of {feature: value} objects")
        if payload and not isinstance(payload[0], (list, tuple, dict)):
            payload = [payload]  # one row given as a flat list of numbers
        if payload and isinstance(payload[0], list) and payload[0] == self.features:
            payload = payload[1:]  # a CSV body sent with its header row
        return [self._row(i, item) for i, item in enumerate(payload)]

    def _row(self, index: int, item: Any) -> list[float]:
        if isinstance(item, dict):
            missing = [name for name in self.features if name not in item]
            if missing:
                raise ValueError(f"row {index}: missing feature(s) {', '.join(missing)}")
            item = [item[name] for name in self.features]
        if not isinstance(item, (list, tuple)) or len(item) != len(self.features):
            raise ValueError(f"row {index}: expected {len(self.features)} values"
                             f" ({', '.join(self.features)}), got {item!r}")
        try:
            return [float(value) for value in item]
        except (TypeError, ValueError):
            raise ValueError(f"row {index}: values must be numbers, got {item!r}") from None
