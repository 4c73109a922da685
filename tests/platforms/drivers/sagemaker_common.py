"""What both SageMaker SDK drivers need (stdlib only: imported from the SDK's own venv, where the
driver's folder is on ``sys.path`` because Python puts a script's folder there)."""

from __future__ import annotations

import io
import logging
import sys


def quiet_health_polling() -> None:
    """The SDK polls ``/ping`` with retries, a few log lines per attempt: keep the containers'
    own output visible in the tail a failing test shows."""
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    for name in ("sagemaker.local.entities", "sagemaker.core.local.entities"):
        logging.getLogger(name).setLevel(logging.WARNING)


class Tee(io.TextIOBase):
    """The SDK streams the containers' output to ``sys.stdout``: keep it, and show it on stderr
    (stdout must end with this driver's one JSON line)."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        sys.stderr.write(text)
        return len(text)
