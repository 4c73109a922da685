"""``mldock tune`` on this machine: Optuna drives trials run as tracked ``mldock train`` runs.

1. the spec as the local tuner runs it (``[tune.local]`` applied, CLI budget on top);
2. the parent run: a new one, or the interrupted search of the same spec taken up again
   (``--resume TUNE_ID``, or by itself when the last one of this spec was stopped);
3. the Optuna study (:mod:`mldock.tuning.study`) in the parent's folder; trials a killed run
   left half-done are failed and, for samplers that would not come back to them, queued again;
4. ``parallel_trials`` worker threads ask the study for values and run trials
   (:mod:`mldock.tuning.trial`) until the budget is spent: completed, pruned and failed trials
   count, interrupted ones do not;
5. the best trial's model becomes the parent's and the parent finishes. Interrupted (Ctrl-C,
   SIGTERM), the running trials are stopped and the parent is left ``running``: the search is
   paused, and the next ``mldock tune`` of the same spec resumes it.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from mldock.errors import UsageError
from mldock.interfaces import RunRecord, RunStatus
from mldock.interfaces.common import ProgressSink
from mldock.session import Session
from mldock.tuning import runs as tr
from mldock.tuning.spec import TuneSection
from mldock.tuning.trial import TrialEnd, TrialRun, run_trial

DEPLOYER = "local"
TAG_OWNER = "mldock.tune.owner."  # the process running the search: reconcile leaves it alone


@dataclass(frozen=True)
class TuneArgs:
    """What ``mldock tune`` was asked on the command line."""

    overrides: tuple[str, ...] = ()
    no_container: bool = False
    resume: str | None = None
    fresh: bool = False
    max_trials: int | None = None
    parallel: int | None = None
    verbose: bool = False


@dataclass
class TuneOutcome:
    """How a search ended (``status`` ``running``: paused by an interruption)."""

    tune_id: str
    status: RunStatus
    resumed: bool
    trials: list[RunRecord]
    best: RunRecord | None
    seconds: float


def base_spec(session: Session) -> TuneSection:
    """The project's ``[tune]``, or one line saying it has none."""
    spec = session.config.model.tune
    if spec is None:
        raise UsageError(f"{session.config.path.name} has no [tune] section",
                         hint="add [tune] with objective, direction and [tune.space]"
                              " (see 'mldock tune --help')")
    return spec


def effective_spec(session: Session, args: TuneArgs, deployer: str) -> TuneSection:
    """``[tune]`` as ``deployer`` runs it, with ``--max-trials`` / ``--parallel`` on top."""
    spec = base_spec(session).for_deployer(deployer)
    update = {k: v for k, v in (("max_trials", args.max_trials),
                                ("parallel_trials", args.parallel)) if v is not None}
    spec = spec.model_copy(update=update)
    from mldock.tuning.spec import spec_problem

    found = spec_problem(spec)
    if found:
        raise UsageError(f"tune.{'.'.join(found[0])}: {found[1]}", hint=found[2])
    return spec


def fixed_hyperparameters(session: Session, spec: TuneSection,
                          overrides: tuple[str, ...]) -> dict[str, Any]:
    """The hyperparameters every trial shares: the config's and ``-p``'s, minus searched ones."""
    from mldock.training.params import merge_overrides

    merged = merge_overrides(session.config.model.hyperparameters, overrides)
    clash = sorted(set(spec.space) & {o.partition("=")[0].strip() for o in overrides})
    if clash:
        raise UsageError(f"-p {clash[0]}: this hyperparameter is searched ([tune.space])",
                         hint="drop the -p, or remove it from [tune.space]")
    return {k: v for k, v in merged.items() if k not in spec.space}


def _owner_tags() -> dict[str, str]:
    from mldock.training.reconcile import owner_tags

    return {TAG_OWNER + k.rsplit(".", 1)[1]: v for k, v in owner_tags().items()}


def _owner_alive(run: RunRecord) -> bool | None:
    from mldock.training.reconcile import TAG_HOST, TAG_PID, TAG_START, owner_alive

    keys = {TAG_PID: "pid", TAG_HOST: "host", TAG_START: "start"}
    tags = {k: run.tags[TAG_OWNER + v] for k, v in keys.items() if TAG_OWNER + v in run.tags}
    return owner_alive(tags)


def choose_parent(session: Session, spec: TuneSection, search: str,
                  args: TuneArgs) -> tuple[str, bool]:
    """(tune id, resumed): the search to resume, or a new parent run."""
    tracker = session.tracker
    if args.resume:
        run = tracker.get_run(args.resume)
        _check_resumable(run, search)
        return run.id, True
    if not args.fresh:
        for run in tracker.list_runs(session.project, limit=tr.SCAN_LIMIT):
            if (tr.is_tune(run) and run.status is RunStatus.RUNNING
                    and run.tags.get(tr.TAG_FINGERPRINT) == search
                    and run.tags.get("mldock.platform") == DEPLOYER
                    and _owner_alive(run) is False):
                return run.id, True
    tune_id = tr.create_parent(session, spec, platform=DEPLOYER, search=search,
                               tags=_owner_tags())
    return tune_id, False


def _check_resumable(run: RunRecord, search: str) -> None:
    if not tr.is_tune(run):
        raise UsageError(f"run {run.id} is not a tune", hint="mldock runs list shows tunes")
    if run.status is not RunStatus.RUNNING:
        raise UsageError(f"tune {run.id} is {run.status.value}: it cannot go on",
                         hint="start a new search: mldock tune --new")
    if run.tags.get(tr.TAG_FINGERPRINT) != search:
        raise UsageError(f"tune {run.id} searched another space or objective than [tune] now"
                         " holds (or other fixed hyperparameters)",
                         hint="restore them to resume it, or start a new search: mldock tune")
    if run.tags.get("mldock.platform") != DEPLOYER:
        raise UsageError(f"tune {run.id} ran on {run.tags.get('mldock.platform')}",
                         hint="resume it with the same --env")
    if _owner_alive(run):
        raise UsageError(f"tune {run.id} is running in process"
                         f" {run.tags.get(TAG_OWNER + 'pid')}",
                         hint="wait for it, or stop it (Ctrl-C) before resuming")


def _settle_orphans(session: Session, tune_id: str, progress: ProgressSink) -> None:
    """Stop the trial containers a killed ``mldock tune`` left running and record them killed."""
    from mldock.training.reconcile import orphaned_container, reconcile
    from mldock.tuning.trial import stop_container

    for run in tr.trials_of(session, tune_id):
        if run.status is not RunStatus.RUNNING:
            continue
        name = orphaned_container(run)
        if name:
            progress(f"stopping trial {run.tags.get(tr.TAG_TRIAL)}, left running in {name}")
            stop_container(run.id)
        reconcile(session, run.id)


def _point(params: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def _reopen_study(study: Any, session: Session, tune_id: str,
                  spec: TuneSection) -> tuple[int, list[dict[str, Any]]]:
    """(trials done, values to run first). Done: completed, pruned, and failed by their own
    doing (not interrupted).

    Trials a killed search left running are told how their run ended, or failed when it was
    interrupted. Grid points not yet done are to run (a queue of ours, not Optuna's
    GridSampler: that one stops a study from inside ``tell`` and repeats points under parallel
    asks); with other strategies, interrupted trials' values run again, so the search goes on
    where it stopped. The queue is handed to the study one trial at a time, just before each
    ask, so a killed search leaves no queue behind in the study (a leftover waiting trial, from
    a kill between the two calls, is asked first and its values are not queued twice).
    """
    from optuna.trial import TrialState

    by_number = {tr.trial_number(r): r for r in tr.trials_of(session, tune_id)}
    done, settled, waiting, retry = 0, set(), set(), []
    for trial in study.get_trials(deepcopy=False):
        run = by_number.get(trial.number)
        if trial.state is TrialState.RUNNING and _told(study, trial.number, run, spec, session,
                                                     tune_id):
            done += 1  # its run ended before the search died: only the study missed it
            settled.add(_point(trial.params))
        elif trial.state is TrialState.RUNNING:  # its run may read 'failed' (exit 0, no model)
            study.tell(trial.number, state=TrialState.FAIL)
            retry.append(trial.params)
        elif trial.state is TrialState.WAITING:  # Optuna keeps queued values here
            waiting.add(_point(trial.system_attrs.get("fixed_params") or trial.params))
        elif trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
                run is not None and run.status in (RunStatus.FAILED, RunStatus.FINISHED)):
            done += 1
            settled.add(_point(trial.params))
        else:  # interrupted: running when its search stopped
            retry.append(trial.params)
    if spec.strategy == "grid":
        from mldock.tuning.space import grid_values

        retry = list(grid_values(spec.space))
        random.Random(spec.seed).shuffle(retry)  # noqa: S311 - an order to try, not a secret
    queue = []
    for params in retry:
        if _point(params) not in settled | waiting:
            queue.append(params)
            waiting.add(_point(params))
    return done, queue


def _told(study: Any, number: int, run: RunRecord | None, spec: TuneSection, session: Session,
          tune_id: str) -> bool:
    """Tell the study how a trial the killed search left ``RUNNING`` ended, if its run says:
    finished with a value, or pruned. ``False``: it was interrupted."""
    from optuna.trial import TrialState

    if run is None:
        return False
    value = tr.objective_of(run, spec.objective)
    if run.status is RunStatus.FINISHED and value is not None:
        study.tell(number, value)
        tr.record_objective(session, tune_id, spec.objective, number, value)
        return True
    if run.tags.get(tr.TAG_PRUNED):
        study.tell(number, state=TrialState.PRUNED)
        return True
    return False


class _Search:
    """The worker threads' shared state: budget, running trials, first fatal error."""

    def __init__(self, session: Session, study: Any, spec: TuneSection, args: TuneArgs,
                 tune_id: str, remaining: int, queue: list[dict[str, Any]],
                 progress: ProgressSink) -> None:
        from mldock.tuning.space import to_distributions

        self.session, self.study, self.spec, self.args = session, study, spec, args
        self.tune_id, self.remaining, self.progress = tune_id, remaining, progress
        self.queue = list(queue)
        self.distributions = to_distributions(spec.space)
        self.lock = threading.Lock()
        self.running: dict[int, TrialRun] = {}
        self.stopping = False
        self.error: BaseException | None = None
        self.ends: list[TrialEnd] = []

    def _next(self) -> TrialRun | None:
        with self.lock:
            if self.stopping or self.remaining <= 0:
                return None
            self.remaining -= 1
            if self.queue:
                self.study.enqueue_trial(self.queue.pop(0))
            trial = self.study.ask(self.distributions)
            run = TrialRun(trial.number, trial, self.args.no_container)
            self.running[trial.number] = run
            return run

    def worker(self) -> None:
        while (run := self._next()) is not None:
            values = ", ".join(f"{k}={v!r}" for k, v in sorted(run.trial.params.items()))
            self.progress(f"trial {run.number} started ({values})")
            try:
                end = run_trial(self.session, run, tune_id=self.tune_id,
                                objective=self.spec.objective, overrides=self.args.overrides,
                                progress=self.progress, verbose=self.args.verbose)
                self._tell(run, end)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread, re-raised
                with self.lock:
                    self.error = self.error or exc
                self.stop_all()
                with contextlib.suppress(Exception):  # the study may refuse: already told
                    self._tell(run, TrialEnd(run.number, run.run_id, "interrupted",
                                             note=str(exc)))
            finally:
                with self.lock:
                    self.running.pop(run.number, None)

    def _tell(self, run: TrialRun, end: TrialEnd) -> None:
        from optuna.trial import TrialState

        if end.state == "complete":
            self.study.tell(run.trial, end.value)
        else:
            state = TrialState.PRUNED if end.state == "pruned" else TrialState.FAIL
            self.study.tell(run.trial, state=state)
        with self.lock:
            self.ends.append(end)
        what = (f"{self.spec.objective}={end.value:.6g}" if end.value is not None
                else end.note)
        self.progress(f"trial {end.number} {end.state}: {what} (run {end.run_id})")

    def stop_all(self) -> None:
        with self.lock:
            self.stopping = True
            running = list(self.running.values())
        for run in running:
            run.stop(self.session)


def _run_workers(search: _Search, parallel: int) -> None:
    threads = [threading.Thread(target=search.worker, name=f"mldock-trial-{i}", daemon=True)
               for i in range(parallel)]
    for thread in threads:
        thread.start()
    try:
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(0.2)
    except KeyboardInterrupt:
        search.progress("stopping the running trials (SIGTERM, checkpoint hooks run)...")
        search.stop_all()
        for thread in threads:
            thread.join(120)
        raise
    if search.error is not None:
        raise search.error


def run_local_tune(session: Session, args: TuneArgs, progress: ProgressSink) -> TuneOutcome:
    """Run (or resume) the project's search on this machine to its end."""
    from mldock.tuning.study import LocalTuneOptions, open_study, require_optuna
    from mldock.tuning.support import LOCAL_TUNING, options_for

    require_optuna()
    started = time.monotonic()
    spec = effective_spec(session, args, DEPLOYER)
    options = options_for(base_spec(session), DEPLOYER, LOCAL_TUNING)
    fixed = fixed_hyperparameters(session, spec, args.overrides)
    _prepare(session, args)
    tune_id, resumed = choose_parent(session, spec, tr.fingerprint(spec, fixed, DEPLOYER), args)
    progress = _parent_log(session, tune_id, progress)
    if resumed:
        session.tracker.set_tags(tune_id, _owner_tags())
        _settle_orphans(session, tune_id, progress)
    study = open_study(session.run_dir(tune_id), tune_id, spec,
                       options if isinstance(options, LocalTuneOptions) else None)
    done, queue = _reopen_study(study, session, tune_id, spec)
    budget = _budget(spec)
    progress(f"tune {tune_id} {'resumed' if resumed else 'started'}: {done} of {budget}"
             f" trials done, {spec.parallel_trials} at a time ({spec.strategy},"
             f" early stopping: {spec.stopping})")
    search = _Search(session, study, spec, args, tune_id, max(0, budget - done), queue,
                     progress)
    try:
        _run_workers(search, spec.parallel_trials)
    except KeyboardInterrupt:
        session.tracker.set_tags(tune_id, {"mldock.tune.state": "interrupted"})
        session.tracker.flush()
        raise
    return _finish(session, spec, tune_id, resumed, time.monotonic() - started, progress)


def _budget(spec: TuneSection) -> int:
    if spec.strategy == "grid":
        from mldock.tuning.space import grid_size

        return min(spec.max_trials, grid_size(spec.space))
    return spec.max_trials


def _prepare(session: Session, args: TuneArgs) -> None:
    """Build the session's backends here, before worker threads share them; a missing image
    stops the search before any run exists."""
    _ = session.tracker, session.storage
    if not args.no_container:
        from mldock.imaging.request import require_image

        require_image(session.config, session.builder.exists)
        _ = session.deployer


def _parent_log(session: Session, tune_id: str, progress: ProgressSink) -> ProgressSink:
    """``progress``, and each line into the parent's log (``mldock logs TUNE_ID``)."""
    from mldock.training.runner import LOG_NAME

    path = session.run_dir(tune_id) / LOG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()

    def sink(line: str) -> None:
        with lock, path.open("a", encoding="utf-8") as log:
            log.write(line + "\n")
        progress(line)

    return sink


def _finish(session: Session, spec: TuneSection, tune_id: str, resumed: bool, seconds: float,
            progress: ProgressSink) -> TuneOutcome:
    tracker = session.tracker
    trials = tr.ranked(tr.trials_of(session, tune_id), spec.objective, spec.direction)
    best = trials[0] if trials and tr.objective_of(trials[0], spec.objective) is not None \
        and trials[0].status is RunStatus.FINISHED else None
    if best is not None:
        ref = tr.register_best(session, tune_id, best)
        progress(f"best: trial {best.tags.get(tr.TAG_TRIAL)} (run {best.id})"
                 f" {spec.objective}={tr.objective_of(best, spec.objective):.6g}"
                 + (f"; its model is the tune's: {ref.uri}" if ref else ""))
        tracker.finish_run(tune_id, RunStatus.FINISHED)
    else:
        tracker.finish_run(tune_id, RunStatus.FAILED,
                           error=f"no trial finished with a value of {spec.objective!r}")
    tracker.flush()
    session.notify("mldock_run_finished", run=tracker.get_run(tune_id))
    status = RunStatus.FINISHED if best is not None else RunStatus.FAILED
    return TuneOutcome(tune_id, status, resumed, trials, best, seconds)


__all__ = ["TuneArgs", "TuneOutcome", "run_local_tune"]
