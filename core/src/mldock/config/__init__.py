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
    from mldock.config.loader import ResolvedConfig, find_config_file, load_config

__all__ = ["ResolvedConfig", "find_config_file", "load_config"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mldock.config import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'mldock.config' has no attribute {name!r}")
