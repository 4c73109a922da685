"""Managed online endpoints and deployments (filled in below)."""

from typing import Any

from .routing import Router


def register(router: Router, fake: Any) -> None:
    pass
