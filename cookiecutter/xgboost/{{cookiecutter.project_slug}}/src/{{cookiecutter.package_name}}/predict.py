"""Serving: mldock's server creates ``Predictor()``, calls ``load(model_dir)`` once, then
``predict(payload)`` for each request.

``payload`` is the decoded request body: ``{"instances": [...]}`` and ``{"inputs": [...]}`` arrive
as the list inside, CSV arrives as a list of rows. Empty values mean "missing" (XGBoost's trees
route them down their learned default branch).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from {{ cookiecutter.package_name }} import META_FILE, MODEL_FILE


class Predictor:
    """The probability of churn for each row."""

    def load(self, model_dir: Path) -> None:
        meta = json.loads((Path(model_dir) / META_FILE).read_text())
        self.features: list[str] = list(meta["features"])
        self.booster = xgb.Booster(model_file=str(Path(model_dir) / MODEL_FILE))
        self.booster.set_param({"nthread": 1})  # one request, one core: workers scale out

    def predict(self, payload: Any) -> list[float]:
        """One probability (0 to 1) per row of numbers, or per object keyed by feature name."""
        rows = self._rows(payload)
        if not rows:
            return []
        matrix = xgb.DMatrix(np.asarray(rows, dtype=float), feature_names=self.features)
        return [round(float(p), 6) for p in self.booster.predict(matrix)]

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
            unknown = sorted(set(item) - set(self.features))
            if unknown:
                raise ValueError(f"row {index}: unknown feature(s) {', '.join(unknown)}")
            item = [item.get(name) for name in self.features]  # absent: missing
        if not isinstance(item, (list, tuple)) or len(item) != len(self.features):
            raise ValueError(f"row {index}: expected {len(self.features)} values"
                             f" ({', '.join(self.features)}), got {item!r}")
        try:
            return [np.nan if value in (None, "") else float(value) for value in item]
        except (TypeError, ValueError):
            raise ValueError(f"row {index}: values must be numbers, got {item!r}") from None
