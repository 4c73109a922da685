"""``mldock doctor``: is this machine and project ready? Engine, config, plugins, credentials."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from mldock.cli.output import is_terminal, print_json, print_table
from mldock.interfaces import HealthCheck

if TYPE_CHECKING:  # pragma: no cover
    from mldock.config import ResolvedConfig
    from mldock.host.registry import Registry

app = typer.Typer(help="Check the Docker engine, the config, the plugins and the credentials.")


def _engine_check() -> HealthCheck:
    from mldock.local.engine import engine_health

    return engine_health()


def _plugin_checks() -> list[HealthCheck]:
    from mldock.host import get_host

    host = get_host()
    host.registry.provides()
    failed = [p for p in host.plugins.values() if p.status.value == "failed"]
    active = sum(p.status.value == "active" for p in host.plugins.values())
    return [HealthCheck("plugins", not failed, f"{active} active, {len(failed)} failed",
                        "run 'mldock plugins doctor' for tracebacks" if failed else "")]


def _config_checks() -> list[HealthCheck]:
    from mldock.errors import MldockError
    from mldock.host import get_host
    from mldock.invocation import load_project_config

    try:
        base = load_project_config("")
    except MldockError as exc:
        return [HealthCheck("config", False, exc.message, exc.hint or "")]
    checks = [HealthCheck("config", True, f"{base.path.name} valid")]
    registry = get_host().registry
    for env in (None, *base.environments):
        label = f"env {env}" if env else "base"
        try:
            config = load_project_config(env or "")
        except MldockError as exc:
            checks.append(HealthCheck(f"config ({label})", False, exc.message, exc.hint or ""))
            continue
        checks.extend(_backend_checks(config, registry, label))
    return checks


def _backend_checks(config: ResolvedConfig, registry: Registry,
                    label: str) -> list[HealthCheck]:
    """Instantiate each selected backend and ask it for its own checks (credentials, reach)."""
    from mldock.concerns import BACKEND_CONCERNS
    from mldock.errors import MldockError
    from mldock.session import Session

    session = Session(config, registry)
    targets = [(concern, session.selected(concern)) for concern in BACKEND_CONCERNS]
    checks = []
    for concern, record in targets:
        name = f"{concern} {record.name} ({label})"
        try:
            backend = session.build(record, session.uri_of(concern))
            found = backend.check()
        except MldockError as exc:
            checks.append(HealthCheck(name, False, exc.message, exc.hint or ""))
            continue
        except Exception as exc:  # noqa: BLE001 - a doctor reports, it does not crash
            checks.append(HealthCheck(name, False, f"{type(exc).__name__}: {exc}"))
            continue
        if not found:
            checks.append(HealthCheck(name, True, "ready"))
        for check in found:
            checks.append(HealthCheck(f"{name}: {check.name}", check.ok, check.detail, check.hint))
    return checks


@app.command()
def doctor(json_: bool = typer.Option(False, "--json", help="Print the checks as JSON.")) -> None:
    """Check the Docker engine, the config (base and every environment), plugins and credentials."""
    checks = [
        HealthCheck("python", sys.version_info >= (3, 11), sys.version.split()[0],
                    "mldock needs Python 3.11 or newer"),
        _engine_check(),
        *_plugin_checks(),
        *_config_checks(),
    ]
    if json_:
        print_json([c.__dict__ for c in checks])
    else:
        mark = ("[green]ok[/green]", "[red]FAIL[/red]") if is_terminal() else ("ok", "FAIL")
        print_table(["check", "status", "detail", "what to do"],
                    [[c.name, mark[0] if c.ok else mark[1], c.detail, c.hint] for c in checks])
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
