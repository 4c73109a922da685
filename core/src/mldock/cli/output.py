"""Output for humans and machines: rich on a terminal, plain lines otherwise, JSON on request.

Rich is imported only when stdout is a terminal, so scripted use stays fast and its output stays
stable (no colours, no wrapping, no box characters).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any


def is_terminal() -> bool:
    """Whether to draw for a person: stdout is a TTY and neither NO_COLOR nor CI asks otherwise."""
    if os.environ.get("MLDOCK_PLAIN") or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def print_json(data: Any) -> None:
    """One JSON document on stdout (sorted keys, so output is diffable)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
                title: str | None = None) -> None:
    """A table: rich on a terminal, tab-separated lines with a header otherwise."""
    if is_terminal():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*("" if cell is None else str(cell) for cell in row))
        Console().print(table)
        return
    if title:
        print(f"# {title}")
    print("\t".join(columns))
    for row in rows:
        print("\t".join("" if cell is None else str(cell) for cell in row))


def info(message: str) -> None:
    """A progress or status line for people, on stderr so stdout stays parseable. Passwords in
    URIs are masked; colours and carriage returns of training logs pass through."""
    from mldock.config.secrets import redact_text

    print(redact_text(message), file=sys.stderr, flush=True)


def error_line(message: str, hint: str | None = None) -> None:
    """The one-line error every user-facing failure ends with: one line whatever the message holds
    (newlines and terminal escapes written as ``\\n``, ``\\x1b``), passwords in URIs masked."""
    from mldock.config.secrets import safe_line

    text = f"error: {message}"
    if hint:
        text += f" ({hint})"
    print(safe_line(text), file=sys.stderr, flush=True)
