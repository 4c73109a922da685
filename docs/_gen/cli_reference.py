"""The command-line reference, written from the click command tree of the installed ``mldock``.

Generated at site build time (see ``mldock_docs.py``) so the page cannot drift from the code: a new
option, a changed help text or a plugin's command group shows up on the next build. Every command
group is loaded here (``mldock --help`` itself never loads them).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

# exit codes the CLI sets itself, besides those of mldock.errors (see mldock.cli.main)
FIXED_EXIT_CODES = {
    0: "success (also for `--help` and `--version`)",
    1: "a failure: `mldock train` whose run failed, `mldock doctor` or `mldock plugins doctor`"
       " that found a problem, `mldock predict` answered with a server error",
    2: "a usage error from the command line parser: unknown command or option, bad value",
    130: "interrupted (Ctrl-C); `mldock train` whose run was killed",
}

_RICH_ESCAPE = re.compile(r"\\\[")


def _clean(text: str | None) -> str:
    """Help text as markdown: rich's ``\\[`` escapes undone, whitespace folded, ``|`` escaped."""
    text = inspect.cleandoc(text or "")
    text = _RICH_ESCAPE.sub("[", text)
    text = " ".join(text.split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|")


def root_command() -> Any:
    """The root click command with every command group attached, as ``mldock`` builds it."""
    from mldock.cli.main import build_command

    return build_command()


Path = tuple[str, ...]


def walk(command: Any, path: Path = ("mldock",)) -> Iterator[tuple[Path, Any]]:
    """Every visible command under ``command`` (itself first), with its path, loaded."""
    import typer

    ctx = typer.Context(command, info_name=path[-1])
    yield path, command
    if not hasattr(command, "list_commands"):
        return
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        if sub is None or getattr(sub, "hidden", False):
            continue
        if hasattr(sub, "load"):  # a lazily registered group: load it as running it would
            sub = sub.load()
        yield from walk(sub, (*path, name))


def _rows(command: Any, ctx: Any, kind: str) -> list[str]:
    """``| `decl` | help |`` for each visible parameter of ``kind``, as ``--help`` words it."""
    rows = []
    for param in command.params:
        if param.param_type_name != kind or getattr(param, "hidden", False):
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        decl, text = record
        rows.append(f"| `{decl}` | {_clean(text) or '—'} |")
    return rows


def command_section(path: tuple[str, ...], command: Any) -> str:
    """One command's section: usage, help, arguments and an options table."""
    import typer

    ctx = typer.Context(command, info_name=" ".join(path))
    depth = min(len(path) + 1, 4)
    out = [f"{'#' * depth} `{' '.join(path)}`", ""]
    out += ["```", command.get_usage(ctx), "```", ""]
    if command.help:
        out += [_clean(command.help).replace("\\|", "|"), ""]
    args = _rows(command, ctx, "argument")
    if args:
        out += ["| argument | what it is |", "|---|---|", *args, ""]
    rows = _rows(command, ctx, "option")
    if rows:
        out += ["| option | what it does |", "|---|---|", *rows, ""]
    if hasattr(command, "list_commands"):
        subs = [n for n in command.list_commands(ctx)
                if not getattr(command.get_command(ctx, n), "hidden", False)]
        if subs:
            out += ["Commands: " + ", ".join(f"`{n}`" for n in subs), ""]
    return "\n".join(out)


def _error_modules() -> list[Any]:
    """``mldock.errors`` and each installed plugin package's ``errors`` module."""
    import importlib
    import importlib.util

    from mldock import errors
    from mldock.host import get_host

    modules = [errors]
    for info in get_host().sorted_plugins(include_builtin=False):
        name = f"{info.module.split('.')[0]}.errors"
        if importlib.util.find_spec(name) is not None and name not in {m.__name__ for m in modules}:
            modules.append(importlib.import_module(name))
    return modules


def exit_codes() -> dict[int, list[str]]:
    """Exit code -> what causes it: the CLI's own codes, then every ``MldockError`` class of core
    and of the installed plugins (``<package>.errors``), each with its docstring's first line."""
    from mldock.errors import MldockError

    codes: dict[int, list[str]] = {code: [text] for code, text in FIXED_EXIT_CODES.items()}
    for module in _error_modules():
        owner = "" if module.__name__ == "mldock.errors" else f" ({module.__name__.split('.')[0]})"
        for name, cls in sorted(vars(module).items()):
            if (isinstance(cls, type) and issubclass(cls, MldockError)
                    and cls.__module__ == module.__name__):
                doc = (inspect.getdoc(cls) or "").splitlines()[0].rstrip(".")
                codes.setdefault(cls.exit_code, []).append(f"`{name}`{owner}: {doc}")
    return dict(sorted(codes.items()))


def exit_codes_table() -> str:
    rows = ["| code | meaning |", "|---|---|"]
    for code, causes in exit_codes().items():
        rows.append(f"| {code} | {'; '.join(_clean(c) for c in causes)} |")
    return "\n".join(rows)


def cli_reference() -> str:
    """The whole reference: every visible command, then the exit codes."""
    sections = [command_section(path, command) for path, command in walk(root_command())]
    return "\n\n".join(sections)
