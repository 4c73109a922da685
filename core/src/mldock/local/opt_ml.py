"""The SageMaker ``/opt/ml`` tree, laid out on the host for a local container run.

A local ``mldock train`` mounts this tree at ``/opt/ml`` so the container sees exactly what
SageMaker gives it: ``input/config/hyperparameters.json`` (every value a string),
``resourceconfig.json`` (one host), ``inputdataconfig.json``, one folder per channel, and empty
``model/``, ``output/`` and ``checkpoints/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HOST_NAME = "algo-1"


def encode_hyperparameters(values: Mapping[str, Any]) -> dict[str, str]:
    """SageMaker's form: every value a string; non-strings JSON-encoded (as its SDK does)."""
    return {key: value if isinstance(value, str) else json.dumps(value)
            for key, value in values.items()}


def layout(root: Path, hyperparameters: Mapping[str, Any], channels: Mapping[str, Any]) -> Path:
    """Create the tree under ``root``; return it. Channel folders are mounted over their paths."""
    config = root / "input" / "config"
    for folder in (config, root / "model", root / "output" / "data", root / "checkpoints"):
        folder.mkdir(parents=True, exist_ok=True)
    for name in channels:
        (root / "input" / "data" / name).mkdir(parents=True, exist_ok=True)
    encoded = encode_hyperparameters(hyperparameters)
    (config / "hyperparameters.json").write_text(json.dumps(encoded))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": HOST_NAME, "hosts": [HOST_NAME], "network_interface_name": "eth0"}))
    (config / "inputdataconfig.json").write_text(json.dumps(
        {name: {"ContentType": "application/octet-stream", "TrainingInputMode": "File",
                "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
         for name in channels}))
    return root


def failure_text(root: Path) -> str | None:
    """The failure file the runtime wrote (SageMaker shows its first 1024 characters)."""
    path = root / "output" / "failure"
    if path.is_file():
        text = path.read_text("utf-8", "replace").strip()
        return text or None
    return None
