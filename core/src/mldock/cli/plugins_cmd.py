"""``mldock plugins``: what is installed, what it provides, and what failed."""

from __future__ import annotations

import typer

from mldock.cli.output import is_terminal, print_json, print_table

app = typer.Typer(help="List installed plugins and diagnose broken ones.", no_args_is_help=True)


def _plugin_rows(include_builtin: bool) -> list[dict]:
    from mldock.host import get_host

    host = get_host()
    provides = host.registry.provides()  # collect first: a hook may fail and mark its plugin
    rows = []
    for info in host.sorted_plugins(include_builtin=include_builtin):
        rows.append({
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "status": info.status.value,
            "builtin": info.builtin,
            "module": info.module,
            "provides": provides.get(info.name, {}) if info.status.value == "active" else {},
            "error": info.error,
        })
    return rows


@app.command("list")
def list_plugins(
    all_: bool = typer.Option(False, "--all", "-a", help="Include mldock's built-in plugins."),
    json_: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """List plugins with their status (active, failed, disabled) and what they provide."""
    rows = _plugin_rows(include_builtin=all_)
    if json_:
        print_json(rows)
        return
    if not rows:
        print("no plugins installed (built-ins: mldock plugins list --all)")
        return
    table = []
    for row in rows:
        provided = "; ".join(f"{concern}: {', '.join(names)}"
                             for concern, names in sorted(row["provides"].items()))
        status = row["status"]
        if is_terminal():
            colour = {"active": "green", "failed": "red", "disabled": "yellow"}[status]
            status = f"[{colour}]{status}[/{colour}]"
        table.append([row["name"], row["distribution"], row["version"], status,
                      provided or "-", row["error"] or ""])
    print_table(["name", "distribution", "version", "status", "provides", "error"], table)


@app.command("doctor")
def doctor() -> None:
    """Show every plugin problem in full: tracebacks, unknown hooks, name clashes, bad configs."""
    from mldock.host import get_host
    from mldock.host.registry import CONCERNS

    host = get_host()
    problems = 0
    registry = host.registry
    registry.provides()
    for concern in CONCERNS:
        for name, clash in registry.conflicts(concern).items():
            problems += 1
            who = " and ".join(f"{r.distribution} (plugin {r.plugin!r})" for r in clash)
            print(f"CONFLICT {concern} {name!r} is registered by both {who}")
        if concern in ("command", "template"):
            continue
        for name, reg in registry.records(concern).items():
            try:
                reg.record.load_config_model()
            except Exception as exc:  # noqa: BLE001 - report, do not crash
                problems += 1
                print(f"BROKEN {concern} {name!r} of plugin {reg.plugin!r}: config model does not"
                      f" load: {type(exc).__name__}: {exc}")
    for info in host.sorted_plugins():
        if info.status.value == "failed":
            problems += 1
            print(f"FAILED plugin {info.name!r} ({info.distribution} {info.version},"
                  f" module {info.module}): {info.error}")
            print((info.traceback or "").rstrip())
            print()
        elif info.status.value == "disabled":
            print(f"disabled plugin {info.name!r} ({info.distribution}) by MLDOCK_DISABLE_PLUGINS"
                  " or MLDOCK_LOAD_PLUGINS")
    active = sum(1 for p in host.plugins.values() if p.status.value == "active")
    print(f"{active} active plugin(s), {problems} problem(s)")
    if problems:
        raise typer.Exit(1)
