"""``mldock runs`` and ``mldock logs``: what ran, with which code, image, data, params, metrics."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, overload

import typer

from mldock.cli.output import print_json, print_table

if TYPE_CHECKING:  # annotations only: the CLI imports the session lazily, per command
    from mldock.interfaces.tracking import RunRecord
    from mldock.session import Session

app = typer.Typer(help="List, show and compare tracked runs.", no_args_is_help=True)
logs_app = typer.Typer(help="Show (or follow) the logs of a run.")


def _when(ts: float | None) -> str:
    if not ts:
        return ""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


@overload
def _reconcile(session: Session, run_id: None = None) -> None: ...
@overload
def _reconcile(session: Session, run_id: str) -> RunRecord: ...
def _reconcile(session: Session, run_id: str | None = None) -> RunRecord | None:
    """Record the truth for runs whose 'mldock train' died (kill -9) before showing them; with
    ``run_id``, that run as it now is."""
    from mldock.training.reconcile import reconcile

    reconcile(session, run_id)
    return session.tracker.get_run(run_id) if run_id else None


def _duration(run: RunRecord) -> str:
    if run.ended_at is None:
        return ""
    return f"{run.ended_at - run.started_at:.1f}s"


@app.command("list")
def list_runs(
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many runs."),
    all_projects: bool = typer.Option(False, "--all-projects", help="Not only this project."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Runs, newest first; a tune with its trials under it, best first."""
    from mldock.session import Session
    from mldock.tuning.results import grouped, shown_status

    session = Session.open()
    _reconcile(session)
    # a tune's trials are listed under it (best first), not counted in --limit
    runs = session.tracker.list_runs(None if all_projects else session.project,
                                     limit=max(limit * 50, 1000))
    groups = grouped(runs, limit)
    if json_:
        print_json([{**r.to_dict(), **({"trials": [t.to_dict() for t in trials]}
                                       if trials else {})} for r, trials in groups])
        return

    def row(r: RunRecord, name: str) -> list[str]:
        return [name, shown_status(r), _when(r.started_at), _duration(r),
                " ".join(f"{k}={v:.4g}" for k, v in sorted(r.metrics.items())),
                r.lineage.image or ("local process" if r.lineage.platform == "local" else "")]

    rows = []
    for run, trials in groups:
        rows.append(row(run, run.id + (" (tune)" if trials else "")))
        rows += [row(t, f"  {'└' if i == len(trials) - 1 else '├'} {t.id}")
                 for i, t in enumerate(trials)]
    print_table(["run", "status", "started (UTC)", "duration", "metrics", "image"], rows)


@app.command("show")
def show(run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
         json_: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """One run in full: params, metrics, artifacts and lineage."""
    from mldock.session import Session

    session = Session.open()
    run = _reconcile(session, run_id) or session.tracker.get_run(run_id)
    if json_:
        data = run.to_dict()
        data["metric_history"] = {
            key: [{"step": m.step, "value": m.value, "timestamp": m.timestamp}
                  for m in session.tracker.metric_history(run.id, key)]
            for key in sorted(run.metrics)}
        print_json(data)
        return
    lineage = run.lineage
    rows = [["run", run.id], ["project", run.project], ["status", run.status.value],
            ["started", _when(run.started_at)], ["duration", _duration(run)],
            ["git", f"{lineage.git_commit or '-'}{' (dirty)' if lineage.git_dirty else ''}"],
            ["image", f"{lineage.image or '-'} {lineage.image_id or ''}".strip()],
            ["platform", f"{lineage.platform or '-'} {lineage.job_id or ''}".strip()]]
    rows += [[f"param {k}", v] for k, v in sorted(run.params.items())]
    rows += [[f"metric {k}", f"{v:.6g}"] for k, v in sorted(run.metrics.items())]
    rows += [[f"input {k}", f"{v.get('uri')} sha256:{v.get('sha256', '')[:12]}"]
             for k, v in sorted(lineage.inputs.items())]
    rows += [[f"artifact {a.key}", f"{a.uri} ({a.size} bytes)"] for a in run.artifacts]
    if run.error:
        rows.append(["error", run.error.strip().splitlines()[-1]])
    print_table(["field", "value"], rows)


@app.command("export")
def export(run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
           dest: Path | None = typer.Argument(None, metavar="[DIR]",
                                              help="Folder to write (default ./<run-id>-model)."),
           force: bool = typer.Option(False, "--force", help="Replace DIR if it is not empty."),
           json_: bool = typer.Option(False, "--json", help="Print where it went as JSON."),
           ) -> None:
    """Write a run's model folder to DIR, verified against the stored hashes."""
    from mldock.cli.export import default_dir, export_model
    from mldock.cli.output import info
    from mldock.session import Session

    session = Session.open()
    run = session.tracker.get_run(run_id)
    target = Path(os.path.abspath(dest)) if dest is not None else default_dir(run.id)
    result = export_model(session, run, target, force=force, progress=info)
    if json_:
        print_json(result.to_dict())
        return
    info(f"exported the model of run {run.id} ({result.files} file(s), {result.size} bytes)")
    print(result.dir)


@app.command("compare")
def compare(run_ids: list[str] = typer.Argument(..., help="Two or more run ids."),
            json_: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Params and metrics of several runs side by side."""
    from mldock.errors import UsageError
    from mldock.session import Session

    if len(run_ids) < 2:
        raise UsageError("compare needs at least two run ids")
    session = Session.open()
    runs = [session.tracker.get_run(r) for r in run_ids]
    params = sorted({k for r in runs for k in r.params})
    metrics = sorted({k for r in runs for k in r.metrics})
    if json_:
        print_json({"runs": [r.id for r in runs],
                    "params": {k: [r.params.get(k) for r in runs] for k in params},
                    "metrics": {k: [r.metrics.get(k) for r in runs] for k in metrics}})
        return
    rows = [[f"param {k}", *[r.params.get(k, "") for r in runs]] for k in params]
    rows += [[f"metric {k}", *[("" if r.metrics.get(k) is None else f"{r.metrics[k]:.6g}")
                               for r in runs]] for k in metrics]
    print_table(["", *[r.id for r in runs]], rows)


@logs_app.command()
def logs(run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
         follow: bool = typer.Option(False, "--follow", "-f",
                                     help="Keep printing until it ends.")) -> None:
    """Print the run's training log; with -f, until the run ends (its container exits, or
    its owner is found gone)."""
    from mldock.errors import NotFoundError
    from mldock.session import Session
    from mldock.training.runner import LOG_NAME

    session = Session.open()
    run = _reconcile(session, run_id)
    path = session.run_dir(run.id) / LOG_NAME
    if not path.is_file():
        raise NotFoundError(f"no log for run {run.id} on this machine",
                            hint="logs of cloud runs are on their platform")
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        _print_new(handle)
        if follow:
            _follow(session, run.id, handle)


def _print_new(handle: TextIO) -> None:
    chunk = handle.read()
    if chunk:
        typer.echo(chunk, nl=False)


def _follow(session: Session, run_id: str, handle: TextIO) -> None:
    """Print what the log gains until the run is terminal; every 2 s, a run whose owner died is
    reconciled (so a killed 'mldock train' does not make this wait forever)."""
    from mldock.cli.output import info
    from mldock.training.reconcile import orphaned_container, reconcile

    noted = ended_here = False
    checked = time.monotonic() - 2.0  # the first look is at once
    while True:
        run = session.tracker.get_run(run_id)
        if not run.status.is_terminal and time.monotonic() - checked >= 2.0:
            checked = time.monotonic()
            ended_here = bool(reconcile(session, run_id))
            run = session.tracker.get_run(run_id)
            container = orphaned_container(run)
            if container and not noted:
                info(f"note: the mldock process of run {run_id} is gone; its container"
                     f" {container} still trains; waiting for it to end")
                noted = True
        if run.status.is_terminal:
            _print_new(handle)
            if ended_here and run.error:
                info(f"run {run_id} {run.status.value}: {run.error}")
            return
        _print_new(handle)
        time.sleep(0.5)
