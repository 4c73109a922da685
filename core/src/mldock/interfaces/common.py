"""Small types shared by all interfaces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

ProgressSink = Callable[[str], None]
"""Receives human-readable progress lines (build steps, upload progress, job status)."""


def null_progress(line: str) -> None:
    """A progress sink that drops everything."""


@dataclass(frozen=True)
class HealthCheck:
    """One line of ``mldock doctor``: what was checked, whether it passed, and what to do if not."""

    name: str
    ok: bool
    detail: str = ""
    hint: str = ""
