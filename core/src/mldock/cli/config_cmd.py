"""``mldock config``: show the resolved config and validate it."""

from __future__ import annotations

from typing import Any

import typer

from mldock.cli.output import print_json

app = typer.Typer(help="Show and validate the project configuration.", no_args_is_help=True)


def _effective(config: Any) -> dict[str, Any]:
    """The config with defaults filled in and backend options validated, as plain data; a URI
    written as ``"env:NAME"`` is shown as the reference, any other secret masked."""
    from mldock.concerns import CONCERNS
    from mldock.config.secrets import redact_data

    data = config.model.model_dump(mode="json", exclude_none=True)
    for (concern, name), options in sorted(config.backend_options.items()):
        section = CONCERNS[concern].section or concern
        if options is not None:
            data.setdefault(section, {})[name] = options.model_dump(mode="json", exclude_none=True)
    for section in ("storage", "tracking"):
        written = config.data.get(section, {}).get("uri") if isinstance(
            config.data.get(section), dict) else None
        if isinstance(written, str) and written.startswith("env:"):
            data.setdefault(section, {})["uri"] = written
    return redact_data(data)


@app.command("show")
def show(
    env: str | None = typer.Option(None, "--env", "-e", metavar="NAME",
                                      help="Environment to overlay (default: the global --env)."),
    json_: bool = typer.Option(False, "--json", help="Print JSON instead of TOML."),
) -> None:
    """Print the config as mldock sees it: environment applied, defaults filled in."""
    from mldock.invocation import load_project_config

    config = load_project_config(env)
    data = _effective(config)
    meta = {"file": str(config.path), "env": config.env, "environments": list(config.environments)}
    if json_:
        print_json({"config": data, **meta})
        return
    import tomli_w

    print(f"# {meta['file']}" + (f" (env: {config.env})" if config.env else ""))
    print(tomli_w.dumps(data), end="")


@app.command("validate")
def validate(
    env: str | None = typer.Option(
        None, "--env", "-e", metavar="NAME",
        help="Validate only this environment (default: base and all)."),
) -> None:
    """Validate the config: the base, then every [env.NAME] overlay. Exit 2 on the first problem."""
    from mldock.invocation import INVOCATION, load_project_config

    chosen = env or INVOCATION.env
    if chosen:
        config = load_project_config(chosen)
        print(f"{config.path.name}: valid (env {chosen})")
        return
    config = load_project_config("")
    for name in config.environments:
        load_project_config(name)
    envs = ", ".join(config.environments) or "none"
    print(f"{config.path.name}: valid (base and environments: {envs})")


@app.command("example")
def example(
    name: str = typer.Argument(..., metavar="NAME",
                               help="A backend's name, e.g. sagemaker, s3 or mlflow."),
) -> None:
    """Print the example config block of backend NAME, as its plugin documents it.

    Paste it into mldock.toml and fill in the <placeholders>. Exit 2 for an unknown name.
    """
    from mldock.errors import MldockError
    from mldock.host import get_host
    from mldock.host.examples import example_text

    try:
        text = example_text(get_host().registry, name)
    except MldockError as exc:
        exc.exit_code = 2
        raise
    print(text, end="")
