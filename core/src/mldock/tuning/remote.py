"""``mldock --env X tune``: the same ``[tune]`` on the platform's own tuner, through its deployer.

Core does what it does for ``mldock train`` (image pushed and pinned, local data staged) and
builds a :class:`~mldock.interfaces.TuneRequest` from the spec as that deployer runs it, already
checked against the deployer's :class:`~mldock.interfaces.TuningSupport`. The deployer's
:meth:`~mldock.interfaces.Deployer.tune` runs the platform's tuning job; each trial it reports
becomes a child run of the tune (its platform job id in the lineage, its model where the
platform left it), and the best trial's model becomes the tune's. A platform's tuning job is
not resumed from here: Ctrl-C stops it (the deployer does), and the tune run ends ``killed``.
"""

from __future__ import annotations

import time

from mldock.errors import UsageError
from mldock.interfaces import (
    ArtifactRef,
    Lineage,
    Metric,
    RunStatus,
    TrialResult,
    TuneRequest,
    TuneResult,
    TuningSupport,
)
from mldock.interfaces.common import ProgressSink
from mldock.runtime.names import ENV_OBJECTIVE
from mldock.session import Session
from mldock.tuning import runs as tr
from mldock.tuning.local import (
    TuneArgs,
    TuneOutcome,
    base_spec,
    effective_spec,
    fixed_hyperparameters,
)
from mldock.tuning.space import to_neutral
from mldock.tuning.spec import TuneSection
from mldock.tuning.support import options_for, support_problem


def _support(session: Session) -> TuningSupport:
    support = session.deployer_record.tuning
    if support is None or "tuning" not in session.deployer_record.capabilities:
        raise UsageError(f"deployer {session.deployer_name!r} runs no tuning jobs",
                         hint="tune locally (mldock tune without --env), or install a plugin"
                              " whose deployer has the 'tuning' capability")
    return support


def build_request(session: Session, spec: TuneSection, args: TuneArgs, tune_id: str,
                  image: str, progress: ProgressSink) -> TuneRequest:
    """The request for ``tune_id``: the spec, fixed values, staged data and the trial image."""
    from mldock.training.channels import resolve_channels
    from mldock.training.runner import stage_channel

    support = _support(session)
    inputs = {name: stage_channel(session, channel, progress)
              for name, channel in resolve_channels(session).items()}
    return TuneRequest(
        tune_id=tune_id, image=image, objective=spec.objective, direction=spec.direction,
        space=to_neutral(spec.space), strategy=spec.strategy, early_stopping=spec.stopping,
        max_trials=spec.max_trials, parallel_trials=spec.parallel_trials,
        hyperparameters=fixed_hyperparameters(session, spec, args.overrides), inputs=inputs,
        output_uri=session.storage.uri_for(f"runs/{tune_id}/trials"),
        environment={ENV_OBJECTIVE: spec.objective},
        tune_options=options_for(base_spec(session), session.deployer_name, support),
        seed=spec.seed)


class TrialRecorder:
    """Records each trial the deployer reports as a child run of the tune, once."""

    def __init__(self, session: Session, tune_id: str, spec: TuneSection, image: str,
                 progress: ProgressSink) -> None:
        self.session, self.tune_id, self.spec = session, tune_id, spec
        self.image, self.progress = image, progress
        self.runs: dict[int, str] = {}

    def __call__(self, trial: TrialResult) -> None:
        if trial.number in self.runs or trial.status == "running":
            return
        tracker = self.session.tracker
        tags = {tr.TAG_PARENT: self.tune_id, tr.TAG_TRIAL: str(trial.number),
                "mldock.platform": self.session.deployer_name}
        if trial.pruned:
            tags[tr.TAG_PRUNED] = "true"
        run_id = tracker.create_run(self.session.project, tags=tags)
        self.runs[trial.number] = run_id
        tracker.log_params(run_id, dict(trial.hyperparameters))
        metrics = dict(trial.metrics)
        if trial.objective is not None:
            metrics[self.spec.objective] = trial.objective
        when = trial.ended_at or time.time()
        tracker.log_metrics(run_id, [Metric(key=k, value=float(v), step=0, timestamp=when)
                                     for k, v in sorted(metrics.items())])
        tracker.set_lineage(run_id, Lineage(image_digest=self.image, job_id=trial.job_id,
                                            platform=self.session.deployer_name))
        if trial.model_uri and trial.status == "finished":
            tracker.log_artifact(run_id, ArtifactRef(key=tr.MODEL_KEY.format(run_id=run_id),
                                                     uri=trial.model_uri, sha256="", size=0,
                                                     kind="remote"))
        status = RunStatus(trial.status) if trial.status in ("finished", "failed") \
            else RunStatus.KILLED
        tracker.finish_run(run_id, status, error=trial.failure_reason)
        if status is RunStatus.FINISHED and trial.objective is not None:
            tr.record_objective(self.session, self.tune_id, self.spec.objective, trial.number,
                                trial.objective)
        tracker.flush()
        shown = "pruned" if trial.pruned else trial.status
        value = "" if trial.objective is None else f" {self.spec.objective}={trial.objective:.6g}"
        self.progress(f"trial {trial.number} {shown}:{value} (job {trial.job_id}, run {run_id})")


def run_remote_tune(session: Session, args: TuneArgs, progress: ProgressSink) -> TuneOutcome:
    """Run the search on the configured deployer's tuner, to its end."""
    if args.resume:
        raise UsageError("--resume takes up a local search; a platform's tuning job is run and"
                         " kept by the platform", hint="start it again: mldock --env ENV tune")
    started = time.monotonic()
    support = _support(session)
    spec = effective_spec(session, args, session.deployer_name)
    found = support_problem(spec, session.deployer_name, support)
    if found:
        raise UsageError(f"tune.{'.'.join(found[0])}: {found[1]}", hint=found[2])
    image = _pushed_image(session, progress)
    fixed = fixed_hyperparameters(session, spec, args.overrides)
    tune_id = tr.create_parent(session, spec, platform=session.deployer_name,
                               search=tr.fingerprint(spec, fixed, session.deployer_name), tags={})
    progress(f"tune {tune_id} started on {session.deployer_name}: {spec.max_trials} trials,"
           f" {spec.parallel_trials} at a time ({spec.strategy})")
    recorder = TrialRecorder(session, tune_id, spec, image, progress)
    status, failure, result = RunStatus.FAILED, None, None
    try:
        request = build_request(session, spec, args, tune_id, image, progress)
        result = session.deployer.tune(request, progress=progress, on_trial=recorder)
        for trial in result.trials:
            recorder(trial)
        status, failure = _conclude(session, tune_id, spec, result, recorder)
    except KeyboardInterrupt:
        status, failure = RunStatus.KILLED, "interrupted"
        raise
    except BaseException as exc:
        failure = str(exc) or type(exc).__name__
        raise
    finally:
        session.tracker.finish_run(tune_id, status, error=failure)
        session.tracker.flush()
    trials = tr.ranked(tr.trials_of(session, tune_id), spec.objective, spec.direction)
    best = next((r for r in trials if result is not None and result.best is not None
                 and recorder.runs.get(result.best) == r.id), None)
    return TuneOutcome(tune_id, status, False, trials, best, time.monotonic() - started)


def _conclude(session: Session, tune_id: str, spec: TuneSection, result: TuneResult,
              recorder: TrialRecorder) -> tuple[RunStatus, str | None]:
    best = result.best_trial()
    if best is None or best.number not in recorder.runs:
        return RunStatus.FAILED, (result.failure_reason
                                  or f"no trial finished with a value of {spec.objective!r}")
    run = session.tracker.get_run(recorder.runs[best.number])
    tr.register_best(session, tune_id, run)
    session.tracker.set_tags(tune_id, {"mldock.tune.job": result.job_id})
    return RunStatus.FINISHED, None


def _pushed_image(session: Session, progress: ProgressSink) -> str:
    from mldock.imaging.request import require_image
    from mldock.publish import push_for_target

    image = require_image(session.config, session.builder.exists)
    published = push_for_target(session, image, progress=progress)
    return published.pinned if published else image
