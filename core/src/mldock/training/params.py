"""Hyperparameters from the config and ``-p key=value`` overrides."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from mldock.errors import UsageError

KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def parse_value(text: str) -> Any:
    """``10`` → 10, ``0.5`` → 0.5, ``true`` → True, ``[1,2]`` → list; other text stays a string."""
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
            raise UsageError(
                f"hyperparameter {key!r}: names starting with 'sagemaker_' are reserved")
        parsed = parse_value(value)
        _refuse_secret(key, parsed)
        merged[key] = parsed
    return merged


def _refuse_secret(key: str, value: Any) -> None:
    """Hyperparameters are stored with the run and written to ``hyperparameters.json``: a secret
    given with ``-p`` would be kept in plain text, so it is refused (never echoed)."""
    from mldock.config.secrets import ENV_HINT, override_problem

    problem = override_problem(key, value)
    if problem:
        raise UsageError(f"-p {key}: {problem}",
                         hint=f"{ENV_HINT}; hyperparameters are stored with the run, so secrets"
                              " belong in the environment, not in -p")
