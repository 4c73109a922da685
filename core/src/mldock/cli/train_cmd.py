"""``mldock train``: train in the image (or ``--no-container``) and track the run."""

from __future__ import annotations

import signal

import typer

from mldock.cli.output import info

app = typer.Typer(help="Train in the image and track the run.")


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.command()
def train(
    param: list[str] | None = typer.Option(
        None, "--param", "-p", metavar="KEY=VALUE",
        help="Override a hyperparameter (repeatable); values are JSON-decoded when they can be."),
    no_container: bool = typer.Option(
        False, "--no-container", help="Run train(ctx) in a local process instead of the image."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not echo the training log."),
    instances: int | None = typer.Option(
        None, "--instances", min=1, max=64, metavar="N",
        help="Train on N hosts: locally N containers laid out as a SageMaker job on N instances"
             " (algo-1…N on a private network); with --env, the platform's instance count."),
) -> None:
    """Train and print the run id on stdout; the log goes to stderr and to 'mldock logs RUN_ID'.

    Locally the image runs exactly as SageMaker runs it (an /opt/ml tree mounted, 'train'
    argument); with --env the configured deployer runs it on its platform. Ctrl-C or SIGTERM
    stops training (the checkpoint hook runs) and marks the run killed. With --instances N every
    host runs train(ctx) with its rank; one failing host stops the others and fails the run.
    """
    from mldock.interfaces import RunStatus
    from mldock.session import Session
    from mldock.training.runner import run_training

    if no_container and instances is not None and instances > 1:
        from mldock.errors import UsageError

        raise UsageError(f"--instances {instances} needs the image: --no-container trains in one"
                         " local process", hint="drop --no-container (run 'mldock build' first)")
    session = Session.open()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        outcome = run_training(session, overrides=param or (), no_container=no_container,
                               progress=(lambda line: None) if quiet else info,
                               instances=instances)
    except KeyboardInterrupt:
        info("training stopped: the run is marked killed")
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        session.close()
    if outcome.status is RunStatus.FINISHED:
        info(f"run {outcome.run_id} finished in {outcome.seconds:.1f} s")
        print(outcome.run_id)
        return
    last = (outcome.failure or "").strip().splitlines()
    reason = last[-1] if last else outcome.status.value
    from mldock.cli.output import error_line

    print(outcome.run_id)
    error_line(f"run {outcome.run_id} {outcome.status.value}: {reason}",
               f"see 'mldock logs {outcome.run_id}'")
    raise typer.Exit(1 if outcome.status is RunStatus.FAILED else 130)
