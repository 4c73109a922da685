"""Built-in plugin ``core-commands``: mldock's own command groups, loaded only when they run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mldock.markers import hookimpl
from mldock.records import CommandRecord, resolve_object

# name -> ("module:typer app", summary shown by ``mldock --help``)
CORE_COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("mldock.cli.init_cmd:app", "Create a project from a template."),
    "build": ("mldock.cli.build_cmd:app", "Build the project's image (skipped when unchanged)."),
    "push": ("mldock.cli.build_cmd:push_app", "Push the project's image to a registry."),
    "train": ("mldock.cli.train_cmd:app",
              "Train in the image (or --no-container) and track the run."),
    "deploy": ("mldock.cli.deploy_cmd:deploy_app", "Serve a run's model on the configured target."),
    "undeploy": ("mldock.cli.deploy_cmd:undeploy_app", "Stop and remove an endpoint."),
    "predict": ("mldock.cli.deploy_cmd:predict_app", "Send a request to a deployed endpoint."),
    "batch": ("mldock.cli.batch_cmd:app", "Run a batch prediction job over stored data."),
    "tune": ("mldock.cli.tune_cmd:app", "Search hyperparameters: trials as runs under one tune."),
    "runs": ("mldock.cli.runs_cmd:app", "List, show and compare tracked runs."),
    "logs": ("mldock.cli.runs_cmd:logs_app", "Show (or follow) the logs of a run."),
    "plugins": ("mldock.cli.plugins_cmd:app", "List installed plugins and diagnose broken ones."),
    "config": ("mldock.cli.config_cmd:app", "Show and validate the project configuration."),
    "ui": ("mldock.cli.ui_cmd:app", ("Look at runs, metric curves, lineage and endpoints in a"
                                     " browser.")),
    "doctor": ("mldock.cli.doctor_cmd:app",
               "Check the Docker engine, config, plugins and credentials."),
}


def _loader(ref: str) -> Callable[[], Any]:
    def load() -> Any:
        return resolve_object(ref)

    return load


@hookimpl
def mldock_commands() -> list[CommandRecord]:
    return [CommandRecord(name=name, summary=summary, factory=_loader(ref))
            for name, (ref, summary) in CORE_COMMANDS.items()]
