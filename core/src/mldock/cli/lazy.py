"""A click group whose plugin-provided subcommands load only when they are used.

``mldock --help`` lists every group from its record's name and summary; the group's module (and
whatever it imports) is loaded only when that group runs or shows its own help.
"""

from __future__ import annotations

import difflib
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from mldock.errors import PluginError

_ROOT_ONLY = frozenset({"install_completion", "show_completion"})


class PendingCommand(TyperCommand):
    """Stands in for a command group in listings until it is resolved."""

    def __init__(self, name: str, summary: str, record: Any, plugin: str):
        super().__init__(name=name, help=summary, short_help=summary)
        self.record = record
        self.plugin = plugin

    def load(self) -> Any:
        try:
            obj = self.record.factory()
            command = typer.main.get_command(obj) if isinstance(obj, typer.Typer) else obj
        except Exception as exc:
            raise PluginError(f"command {self.name!r} of plugin {self.plugin!r} failed to load:"
                              f" {type(exc).__name__}: {exc}",
                              hint="run 'mldock plugins doctor' for details") from exc
        command.name = self.name
        # a Typer app adds --install-completion/--show-completion to itself; only the root should
        # offer them (they would list under every group, and completion is per program)
        command.params = [p for p in command.params if p.name not in _ROOT_ONLY]
        return command


class LazyGroup(TyperGroup):
    """The root group: built-in options plus lazily loaded command groups from the registry."""

    pending: dict[str, PendingCommand]

    def set_pending(self, commands: dict[str, PendingCommand]) -> None:
        self.pending = commands

    def list_commands(self, ctx: Any) -> list[str]:
        own = super().list_commands(ctx)
        extra = [name for name in getattr(self, "pending", {}) if name not in own]
        return sorted([*own, *extra])

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = getattr(self, "pending", {}).get(cmd_name)
        return command

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            name, command, rest = super().resolve_command(ctx, args)
        except typer._click.exceptions.UsageError as exc:
            close = difflib.get_close_matches(args[0] if args else "", self.list_commands(ctx), n=1)
            if close and "Did you mean" not in str(exc.message):
                exc.message = f"{exc.message} Did you mean '{close[0]}'?"
            raise
        if isinstance(command, PendingCommand):
            command = command.load()
        return name, command, rest
