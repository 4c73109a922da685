"""One-line messages on stderr, the only log channel every platform collects.

The runtime avoids :mod:`logging` configuration games: user code may configure logging as it
likes, and our own lines (start-up URL, load errors, tracebacks) must appear regardless.
"""

from __future__ import annotations

import sys

PREFIX = "mldock-runtime: "


def log(message: str) -> None:
    """Write one prefixed line to stderr and flush it at once (containers buffer otherwise)."""
    try:
        sys.stderr.write(PREFIX + message + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed: nothing sensible left to do
        pass
