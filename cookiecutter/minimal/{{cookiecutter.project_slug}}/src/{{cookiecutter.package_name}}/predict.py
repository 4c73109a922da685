"""Serving: mldock's server creates ``Predictor()``, calls ``load(model_dir)`` once, then
``predict(payload)`` for each request.

``payload`` is the decoded request body: ``{"instances": [...]}`` and ``{"inputs": [...]}`` arrive
as the list inside, CSV arrives as a list of rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }} import MODEL_FILE


class Predictor:
    """Applies the fitted line to each input value."""

    def load(self, model_dir: Path) -> None:
        model = json.loads((Path(model_dir) / MODEL_FILE).read_text())
        self.feature: str = model["feature"]
        self.slope = float(model["slope"])
        self.intercept = float(model["intercept"])

    def predict(self, payload: Any) -> list[float]:
        """One prediction per value: numbers, one-value rows ``[x]`` or ``{feature: x}``."""
        if hasattr(payload, "tolist"):
            payload = payload.tolist()  # an .npy request body arrives as a numpy array
        if isinstance(payload, dict):
            payload = payload.get("instances", payload.get("inputs", [payload]))
        if not isinstance(payload, list):
            payload = [payload]
        if payload and payload[0] == [self.feature]:
            payload = payload[1:]  # a CSV body sent with its header row
        return [self.slope * self._value(i, item) + self.intercept
                for i, item in enumerate(payload)]

    def _value(self, index: int, item: Any) -> float:
        if isinstance(item, dict):
            if self.feature not in item:
                raise ValueError(f"item {index}: missing {self.feature!r}")
            item = item[self.feature]
        elif isinstance(item, (list, tuple)):
            if len(item) != 1:
                raise ValueError(f"item {index}: expected one value ({self.feature}), got {item!r}")
            item = item[0]
        if isinstance(item, bool):
            raise ValueError(f"item {index}: expected a number, got {item!r}")
        try:
            return float(item)
        except (TypeError, ValueError):
            raise ValueError(f"item {index}: expected a number, got {item!r}") from None
