"""Hyperparameters from the config and ``-p key=value`` overrides."""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping

from mldock.errors import UsageError

KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def parse_value(text: str) -> Any:
    """``10`` → 10, ``0.5`` → 0.5, ``true`` → True, ``[1,2]`` → list; anything else stays a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def merge_overrides(base: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """The config's hyperparameters with each ``key=value`` applied on top."""
    merged = dict(base)
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not KEY.match(key):
            raise UsageError(f"invalid hyperparameter {item!r}", hint="use -p key=value")
        if key.startswith("sagemaker_"):
            raise UsageError(f"hyperparameter {key!r}: names starting with 'sagemaker_' are reserved")
        merged[key] = parse_value(value)
    return merged
