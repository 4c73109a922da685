"""Project configuration: ``mldock.toml`` or ``[tool.mldock]`` in ``pyproject.toml``.

See ``docs/configuration.md`` for the reference. :func:`load_config` finds, overlays, validates and
returns a :class:`ResolvedConfig`; any problem is a :class:`mldock.errors.ConfigError` naming the
file, the key path and what is wrong.

The names below are imported on first use, so that the standard-library-only helpers of this
package (:mod:`mldock.config.secrets`, used on every error line) do not pull in pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from mldock.config.files import find_config_file
    from mldock.config.loader import ResolvedConfig, load_config

__all__ = ["ResolvedConfig", "find_config_file", "load_config"]

# public name -> the module that defines it
_HOMES = {"ResolvedConfig": "mldock.config.loader", "load_config": "mldock.config.loader",
          "find_config_file": "mldock.config.files"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mldock.config' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(home), name)
