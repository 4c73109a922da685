"""Serving: mldock's server creates ``Predictor()``, calls ``load(model_dir)`` once, then
``predict(payload)`` for each request.

``payload`` is the decoded request body: ``{"instances": [...]}`` and ``{"inputs": [...]}`` arrive
as the list inside, CSV arrives as a list of rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np

from {{ cookiecutter.package_name }} import MODEL_FILE


class Predictor:
    """Classifies feature rows with the trained forest."""

    def load(self, model_dir: Path) -> None:
        bundle = joblib.load(Path(model_dir) / MODEL_FILE)
        self.model = bundle["model"]
        self.features: list[str] = list(bundle["features"])

    def predict(self, payload: Any) -> list:
        """Class labels for a list of rows (lists of numbers) or of dicts keyed by feature name."""
        rows = self._rows(payload)
        if not rows:
            return []
        X = np.asarray(rows, dtype=float)
        labels = self.model.predict(X)
        return [label.item() if hasattr(label, "item") else label for label in labels]

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
