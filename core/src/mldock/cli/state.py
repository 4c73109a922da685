"""What the root command's options set for every subcommand (kept in :mod:`mldock.invocation`,
so core reads it without importing the CLI)."""

from __future__ import annotations

from mldock.invocation import INVOCATION as STATE
from mldock.invocation import Invocation as CliState
from mldock.invocation import load_project_config

__all__ = ["STATE", "CliState", "load_project_config"]
