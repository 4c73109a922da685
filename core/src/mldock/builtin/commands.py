"""Built-in plugin ``core-commands``: mldock's own command groups, loaded only when they run."""

from __future__ import annotations

from importlib import import_module

from mldock.markers import hookimpl
from mldock.records import CommandRecord

# name -> (module with a typer app called ``app``, summary shown by ``mldock --help``)
CORE_COMMANDS: dict[str, tuple[str, str]] = {
    "plugins": ("mldock.cli.plugins_cmd", "List installed plugins and diagnose broken ones."),
    "config": ("mldock.cli.config_cmd", "Show and validate the project configuration."),
    "doctor": ("mldock.cli.doctor_cmd",
               "Check the Docker engine, config, plugins and credentials."),
}


def _loader(module: str):
    def load():
        return import_module(module).app

    return load


@hookimpl
def mldock_commands():
    return [CommandRecord(name=name, summary=summary, factory=_loader(module))
            for name, (module, summary) in CORE_COMMANDS.items()]
