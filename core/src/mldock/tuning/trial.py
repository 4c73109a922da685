"""One local trial: a tracked training run of sampled values, stopped early when Optuna says so.

The trial is an ordinary ``mldock train`` run (:func:`mldock.training.runner.run_training`: the
image, or ``--no-container``), tagged as a child of the search. Its metrics arrive live (the
local deployer tails them); each value of the objective is reported to the Optuna trial, and
when the pruner says stop, the trial's container gets SIGTERM (a ``--no-container`` trial's
process likewise), so the runtime's checkpoint hook runs and the run ends ``killed``, tagged
pruned. A worker thread runs each trial; signals stay with the main thread, which stops the
running trials the same way on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mldock.interfaces import Metric, RunStatus
from mldock.interfaces.common import ProgressSink
from mldock.interfaces.deploy import MetricsSink
from mldock.session import Session
from mldock.training.runner import RunOutcome, print_nothing, run_training
from mldock.tuning.runs import TAG_PARENT, TAG_PRUNED, TAG_TRIAL, objective_of, record_objective


@dataclass
class TrialRun:
    """A trial while it runs: what the pruner and Ctrl-C need to stop it."""

    number: int
    trial: Any  # optuna.Trial
    no_container: bool
    run_id: str | None = None
    pruned: bool = False
    stopping: bool = False
    steps: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def started(self, run_id: str) -> None:
        self.run_id = run_id

    def stop(self, session: Session) -> None:
        """SIGTERM to the trial's container (or process); a trial that already ended is left."""
        with self.lock:
            if self.stopping or self.run_id is None:
                self.stopping = True
                return
            self.stopping = True
            run_id = self.run_id
        if self.no_container:
            _stop_process(session, run_id)
        else:
            stop_container(run_id)


def stop_container(run_id: str) -> None:
    from mldock.local.deploy import train_container_name
    from mldock.local.engine import docker_client

    with contextlib.suppress(Exception):  # gone already: it ended on its own
        docker_client(timeout=30).containers.get(train_container_name(run_id)).stop(timeout=30)


def _stop_process(session: Session, run_id: str) -> None:
    pid_file = session.run_dir(run_id) / "local" / "pid"
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


_PRUNER_LOCK = threading.Lock()
"""Trials report from several threads; Optuna's Hyperband pruner builds its brackets lazily and
was seen failing ("This line should be unreachable") when two trials asked at once."""


def _report_and_ask(run: TrialRun, value: float, step: int, *, ask: bool) -> bool:
    """Report an intermediate objective; with ``ask``, whether the pruner stops the trial. A
    pruner that fails keeps the trial running (the search must not end for it)."""
    with _PRUNER_LOCK:
        run.trial.report(value, step)
        if not ask:
            return False
        try:
            return bool(run.trial.should_prune())
        except Exception:  # noqa: BLE001 - a pruner's own error: do not prune, go on
            return False


def objective_sink(run: TrialRun, session: Session, objective: str) -> MetricsSink:
    """The metrics sink of a trial: the objective to Optuna, and a stop when it prunes."""
    def sink(metrics: Sequence[Metric]) -> None:
        for metric in metrics:
            if metric.key != objective:
                continue
            step = metric.step if metric.step not in run.steps else max(run.steps) + 1
            run.steps.add(step)
            if _report_and_ask(run, metric.value, step, ask=not (run.pruned or run.stopping)):
                run.pruned = True
                run.stop(session)

    return sink


@dataclass
class TrialEnd:
    """How a trial ended, for the search: its run, Optuna state and value."""

    number: int
    run_id: str | None
    state: str  # "complete", "pruned", "fail", "interrupted"
    value: float | None = None
    note: str = ""


def run_trial(session: Session, run: TrialRun, *, tune_id: str, objective: str,
              overrides: Sequence[str], progress: ProgressSink, verbose: bool) -> TrialEnd:
    """Train once with the trial's values and say how it ended (never raises a run's failure)."""
    values = [f"{k}={json.dumps(v)}" for k, v in sorted(run.trial.params.items())]
    prefix = f"[trial {run.number}] "
    shown = (lambda line: progress(prefix + line)) if verbose else print_nothing
    outcome: RunOutcome = run_training(
        session, overrides=[*overrides, *values], no_container=run.no_container,
        progress=shown, tags={TAG_PARENT: tune_id, TAG_TRIAL: str(run.number)},
        on_run=run.started, on_metrics=objective_sink(run, session, objective))
    return _ending(session, run, outcome, tune_id, objective)


def _ending(session: Session, run: TrialRun, outcome: RunOutcome, tune_id: str,
            objective: str) -> TrialEnd:
    tracker = session.tracker
    if outcome.status is RunStatus.FINISHED:
        value = objective_of(tracker.get_run(outcome.run_id), objective)
        if value is None:
            return TrialEnd(run.number, outcome.run_id, "fail",
                            note=f"finished without logging {objective!r}")
        record_objective(session, tune_id, objective, run.number, value)
        return TrialEnd(run.number, outcome.run_id, "complete", value)
    if run.pruned:
        tracker.set_tags(outcome.run_id, {TAG_PRUNED: "true"})
        tracker.flush()
        return TrialEnd(run.number, outcome.run_id, "pruned", note="stopped early")
    if run.stopping or outcome.status is RunStatus.KILLED:
        return TrialEnd(run.number, outcome.run_id, "interrupted", note="stopped")
    reason = (outcome.failure or "").strip().splitlines()
    return TrialEnd(run.number, outcome.run_id, "fail", note=reason[-1] if reason else "failed")
