"""Hyperparameters from every platform's format, decoded to Python values.

SageMaker writes ``hyperparameters.json`` with every value a string (``"0.1"``, ``"true"``,
``'["a", 1]'``); Vertex AI and Azure ML pass ``--k=v`` arguments; local runs pass
``MLDOCK_HYPERPARAMETERS`` as a JSON object. User code should see the same typed dict everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_SKIP_PREFIXES = ("sagemaker_",)
_SKIP_KEYS = frozenset({"_tuning_objective_metric"})  # added by SageMaker tuning jobs
_LITERALS = {"True": True, "False": False, "None": None}

# Arguments that name directories rather than hyperparameters (see context.py).
RESERVED_ARGUMENTS = ("input-", "input_", "model-dir", "model_dir", "output-dir", "output_dir",
                      "checkpoint-dir", "checkpoint_dir")


def decode_value(text: str) -> Any:
    """One string decoded as JSON if it is JSON (numbers, booleans, lists…), else kept as is.

    Python spellings ``True``/``False``/``None`` (older SageMaker SDKs used ``str()``) also decode.
    """
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    if stripped in _LITERALS:
        return _LITERALS[stripped]
    try:
        return json.loads(stripped)
    except ValueError:
        return text


def decode_sagemaker(raw: Mapping[str, Any]) -> dict[str, Any]:
    """SageMaker's all-strings mapping decoded; ``sagemaker_*`` bookkeeping keys dropped."""
    return {key: decode_value(value) for key, value in raw.items()
            if not key.startswith(_SKIP_PREFIXES) and key not in _SKIP_KEYS}


def read_sagemaker(path: Path) -> dict[str, Any]:
    """Decoded hyperparameters of ``/opt/ml/input/config/hyperparameters.json`` ({} if absent)."""
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text(encoding="utf-8") or "{}")
    if not isinstance(raw, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return decode_sagemaker(raw)


def parse_arguments(argv: Iterable[str]) -> dict[str, Any]:
    """``--k=v``, ``--k v`` and bare ``--flag`` (True) arguments, values decoded like SageMaker's.

    Positional words that follow no option are ignored; the caller has already removed the
    ``train`` command word.
    """
    args = list(argv)
    result: dict[str, Any] = {}
    i = 0
    while i < len(args):
        word = args[i]
        i += 1
        if not word.startswith("--") or word == "--":
            continue
        key, sep, value = word[2:].partition("=")
        if not key:
            continue
        if sep:
            result[key] = decode_value(value)
        elif i < len(args) and not args[i].startswith("--"):
            result[key] = decode_value(args[i])
            i += 1
        else:
            result[key] = True
    return result


def split_reserved(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate directory arguments (``--input-<ch>``, ``--model-dir``…) from hyperparameters."""
    reserved: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for key, value in values.items():
        target = reserved if key.startswith(RESERVED_ARGUMENTS) else params
        target[key] = value
    return reserved, params


def read_env_json(text: str | None) -> dict[str, Any]:
    """``MLDOCK_HYPERPARAMETERS``: a JSON object of already-typed values (empty when unset)."""
    if not text or not text.strip():
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("MLDOCK_HYPERPARAMETERS must be a JSON object")
    return value
