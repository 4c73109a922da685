"""``mldock tune``: search hyperparameters with ``[tune]``, locally (Optuna) or on a platform's
own tuner (``--env``); every trial is a tracked run under one parent run, the tune."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import typer

from mldock.cli.output import info, print_json

if TYPE_CHECKING:  # the CLI imports the session and the tuner lazily, when the command runs
    from mldock.session import Session
    from mldock.tuning.local import TuneArgs, TuneOutcome

app = typer.Typer(help="Search hyperparameters (\\[tune]); trials are runs under one tune run.")


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.command()
def tune(
    param: list[str] | None = typer.Option(
        None, "--param", "-p", metavar="KEY=VALUE",
        help="Set a fixed hyperparameter for every trial (repeatable); not a searched one."),
    no_container: bool = typer.Option(
        False, "--no-container", help="Run trials as local processes instead of the image."),
    resume: str | None = typer.Option(
        None, "--resume", metavar="TUNE_ID",
        help="Go on with an interrupted search (by default the last one of the same \\[tune]"
             " is resumed by itself)."),
    new: bool = typer.Option(False, "--new", help="Start a new search even if one can resume."),
    max_trials: int | None = typer.Option(
        None, "--max-trials", min=1, max=10_000, metavar="N", help="Override \\[tune] max_trials."),
    parallel: int | None = typer.Option(
        None, "--parallel", min=1, max=1_000, metavar="N",
        help="Override \\[tune] parallel_trials."),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Echo every trial's log, prefixed with its number."),
    json_: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    r"""Run the search of \[tune] and print the tune's run id on stdout.

    Locally, Optuna picks each trial's values (strategy: bayesian = TPE, random, grid,
    hyperband) and trials run as containers of the project's image, parallel_trials at a time;
    early stopping (median, hyperband) stops a trial's container when its objective lags. The
    study is kept under .mldock/runs/TUNE_ID, so a stopped or killed 'mldock tune' resumes where
    it stopped. With --env the deployer's own tuner runs the same spec. The best trial's model
    becomes the tune's: 'mldock deploy --run TUNE_ID' serves it.
    """
    from mldock.session import Session
    from mldock.tuning.local import TuneArgs

    if resume and new:
        from mldock.errors import UsageError

        raise UsageError("--resume and --new contradict each other", hint="give one of them")
    args = TuneArgs(overrides=tuple(param or ()), no_container=no_container, resume=resume,
                    fresh=new, max_trials=max_trials, parallel=parallel, verbose=verbose)
    session = Session.open()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        outcome = _run(session, args)
    except KeyboardInterrupt:
        info("tune stopped: its finished trials are kept; run 'mldock tune' again to resume")
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        session.close()
    _report(outcome, json_)


def _run(session: Session, args: TuneArgs) -> TuneOutcome:
    if session.remote and not args.no_container:
        from mldock.tuning.remote import run_remote_tune

        return run_remote_tune(session, args, info)
    from mldock.tuning.local import run_local_tune

    return run_local_tune(session, args, info)


def _report(outcome: TuneOutcome, json_: bool) -> None:
    from mldock.interfaces import RunStatus
    from mldock.tuning.runs import TAG_PRUNED, TAG_TRIAL

    if json_:
        print_json({"tune": outcome.tune_id, "status": outcome.status.value,
                    "resumed": outcome.resumed,
                    "best": outcome.best.id if outcome.best else None,
                    "seconds": round(outcome.seconds, 3),
                    "trials": [{"run": r.id, "trial": int(r.tags.get(TAG_TRIAL, -1)),
                                "status": r.status.value, "pruned": TAG_PRUNED in r.tags,
                                "params": r.params, "metrics": r.metrics}
                               for r in outcome.trials]})
    else:
        print(outcome.tune_id)
    if outcome.status is RunStatus.FINISHED:
        info(f"tune {outcome.tune_id} finished in {outcome.seconds:.1f} s"
             f" ({len(outcome.trials)} trial run(s)); deploy its best model:"
             f" mldock deploy --run {outcome.tune_id}")
        return
    from mldock.cli.output import error_line

    error_line(f"tune {outcome.tune_id} {outcome.status.value}: no trial finished with a value"
               " of the objective", f"see 'mldock runs list' and 'mldock logs {outcome.tune_id}'")
    raise typer.Exit(1)
