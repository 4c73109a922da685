"""What the root command's options set for every subcommand: the environment and config path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from mldock.config import ResolvedConfig


@dataclass
class CliState:
    env: str | None = None
    config_path: Path | None = None


STATE = CliState()


def load_project_config(env: str | None = None) -> "ResolvedConfig":
    """Load and validate the project's config (backend sections included) for a command."""
    from mldock.config import load_config
    from mldock.host import get_host

    return load_config(env=env if env is not None else STATE.env, path=STATE.config_path,
                       registry=get_host().registry)
