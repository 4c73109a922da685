"""Project configuration: ``mldock.toml`` or ``[tool.mldock]`` in ``pyproject.toml``.

See ``docs/configuration.md`` for the reference. :func:`load_config` finds, overlays, validates and
returns a :class:`ResolvedConfig`; any problem is a :class:`mldock.errors.ConfigError` naming the
file, the key path and what is wrong.
"""

from mldock.config.loader import ResolvedConfig, find_config_file, load_config

__all__ = ["ResolvedConfig", "find_config_file", "load_config"]
