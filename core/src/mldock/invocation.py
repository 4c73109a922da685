"""What this invocation of mldock chose for every command: the environment and the config file.

The CLI's root options (``--env``, ``--config``) set :data:`INVOCATION`; core services (the
:class:`~mldock.session.Session` above all) read it from here, so nothing outside the CLI imports
the CLI to find the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from mldock.config import ResolvedConfig

__all__ = ["INVOCATION", "Invocation", "load_project_config"]


@dataclass
class Invocation:
    """The environment (``--env``) and config file (``--config``) of this process's command."""

    env: str | None = None
    config_path: Path | None = None


INVOCATION = Invocation()


def load_project_config(env: str | None = None) -> ResolvedConfig:
    """Load and validate the project's config (backend sections included) for a command.

    ``env`` overrides ``--env``; ``""`` asks for the base config explicitly.
    """
    from mldock.config import load_config
    from mldock.host import get_host

    return load_config(env=env if env is not None else INVOCATION.env,
                       path=INVOCATION.config_path, registry=get_host().registry)
