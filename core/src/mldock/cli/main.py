"""The ``mldock`` command: root options, lazy command groups, and one-line errors.

Start-up is kept small on purpose: this module imports typer, pluggy (through the plugin host) and
the standard library only. Each command group lives in its own module, registered by the built-in
``core-commands`` plugin exactly as a third-party plugin registers its own, and is imported only
when it runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

import typer

from mldock import __version__
from mldock.cli.lazy import LazyGroup, PendingCommand
from mldock.cli.state import STATE
from mldock.errors import MldockError

app = typer.Typer(
    name="mldock",
    cls=LazyGroup,
    help=("Build local, deploy everywhere: one image from laptop to SageMaker, Azure ML and"
          " Vertex AI."),
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, pwsh)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if not value:
        return
    from mldock.host import get_host

    print(f"mldock-core {__version__}")
    seen: set[str] = set()
    for info in get_host().sorted_plugins(include_builtin=False):
        key = f"{info.distribution} {info.version}"
        if key not in seen:
            seen.add(key)
            print(key + ("" if info.status.value == "active" else f" ({info.status.value})"))
    raise typer.Exit()


@app.callback()
def root(
    env: str | None = typer.Option(
        None, "--env", "-e", envvar="MLDOCK_ENV", metavar="NAME",
        help="Environment overlay from \\[env.NAME] in the config (or MLDOCK_ENV)."),
    config: Path | None = typer.Option(
        None, "--config", "-c", envvar="MLDOCK_CONFIG", metavar="FILE",
        help="Config file to use instead of the nearest mldock.toml."),
    version: bool = typer.Option(
        False, "--version", "-V", callback=_print_version, is_eager=True,
        help="Show the versions of mldock-core and installed plugins."),
) -> None:
    """Build local, deploy everywhere."""
    STATE.env = env or None
    STATE.config_path = config


def build_command() -> LazyGroup:
    """The root click command with every registered command group attached (not yet loaded)."""
    from mldock.host import get_host

    command = cast(LazyGroup, typer.main.get_command(app))  # app is built with cls=LazyGroup
    registry = get_host().registry
    pending = {
        name: PendingCommand(name, reg.record.summary, reg.record, reg.plugin)
        for name, reg in registry.records("command").items()
    }
    command.set_pending(pending)
    return command


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI; user errors become one line and an exit code."""
    from mldock.cli.output import error_line

    try:
        command = build_command()
        if sys.stderr.isatty():  # typer's boxed usage errors, for people
            command.main(args=argv, prog_name="mldock", standalone_mode=True)
        else:
            sys.exit(_run_plain(command, argv))
    except MldockError as exc:
        error_line(exc.message, exc.hint)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        error_line("interrupted")
        sys.exit(130)


def _run_plain(command: LazyGroup, argv: list[str] | None) -> int:
    """Run with click's errors as one ``error:`` line (no box drawn into a log or a pipe)."""
    from typer._click import exceptions as click  # typer's own click (the one it raises)

    from mldock.cli.output import error_line

    try:
        result = command.main(args=argv, prog_name="mldock", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:  # typer has printed the help already
        return exc.exit_code
    except click.ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f"see '{ctx.command_path} -h'" if ctx is not None and ctx.help_option_names else None
        error_line(exc.format_message(), hint)
        return exc.exit_code
    except typer.Abort:
        error_line("aborted")
        return 1
    # without standalone mode typer returns an Exit's code (and a command's own return value:
    # an int there would become the exit code; core commands return None)
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


if __name__ == "__main__":  # pragma: no cover
    main()
