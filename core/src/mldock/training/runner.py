"""One tracked training run, on any target: the steps ``mldock train`` takes.

1. resolve hyperparameters and input channels (hashed for lineage);
2. find the image for the current code (container runs) — missing is a clear error;
3. create the run, log params and lineage, broadcast ``mldock_run_started``;
4. train on the configured deployer (or in a local process) with metrics forwarded live;
5. store the trained model directory as an artifact of the run;
6. finish the run (finished, failed or killed) and broadcast ``mldock_run_finished``.
Whatever happens in 4–5, the run is finished with a terminal status: nothing is left ``running``.
Should this process itself be killed (``kill -9``), the owner tags recorded in 3 let the next
command that shows runs find the truth (:mod:`mldock.training.reconcile`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from mldock.config.secrets import redact_text
from mldock.errors import MldockError
from mldock.interfaces import (
    ArtifactRef,
    Lineage,
    Metric,
    RunRecord,
    RunStatus,
    TrainingJob,
    TrainingResult,
)
from mldock.interfaces.common import ProgressSink
from mldock.interfaces.deploy import MetricsSink
from mldock.runtime.names import MANIFEST_NAME
from mldock.session import Session
from mldock.training.channels import resolve_channels
from mldock.training.lineage import git_state
from mldock.training.params import merge_overrides

MODEL_KEY = "runs/{run_id}/model"
LOG_NAME = "train.log"


def print_nothing(_: str) -> None:
    """A progress sink (or run callback) that ignores what it is given."""


@dataclass
class RunOutcome:
    run_id: str
    status: RunStatus
    failure: str | None = None
    seconds: float = 0.0


def _tracker_sink(session: Session, run_id: str, progress: ProgressSink,
                  also: MetricsSink | None = None) -> Callable[[Sequence[Metric]], None]:
    """Forward live metrics to the tracker, then to ``also``. A tracking outage must not stop
    training or the tail thread: the first failure is reported once, later values keep being
    offered."""
    failed: list[str] = []

    def sink(metrics: Sequence[Metric]) -> None:
        try:
            session.tracker.log_metrics(run_id, metrics)
            session.tracker.flush()
        except MldockError as exc:
            if not failed:
                failed.append(exc.message)
                progress(f"warning: metrics could not be recorded yet: {exc.message}")
        if also is not None:
            also(metrics)

    return sink


def _logged(log: TextIO, show: ProgressSink) -> ProgressSink:
    """``show``, and every line also into the run's log file (secrets redacted)."""
    def progress(line: str) -> None:
        log.write(redact_text(line) + "\n")
        show(line)

    return progress


def _how_to_repeat(env: str | None, instances: int | None) -> dict[str, str]:
    """Tags that say how the run was started ('mldock --env NAME train --instances N'), so
    'mldock ui' can show the command that trains it again."""
    tags = {"mldock.env": env} if env else {}
    if instances:
        tags["mldock.instances"] = str(instances)
    return tags


# One run's whole lifecycle stays in one function so that its try/finally always finishes the
# run with the status and failure it saw; splitting it would spread that state across helpers.
def run_training(session: Session, *,  # noqa: PLR0915
                 overrides: Iterable[str] = (), no_container: bool = False,
                 progress: ProgressSink, instances: int | None = None,
                 tags: Mapping[str, str] | None = None,
                 on_run: Callable[[str], None] = print_nothing,
                 on_metrics: MetricsSink | None = None) -> RunOutcome:
    """Train once and track it; returns the run id and how it ended.

    ``instances`` (``--instances N``) reaches the deployer as ``options["instance_count"]``:
    N local hosts, or the platform's instance count; None keeps the configured count.
    ``tags`` are set on the new run, ``on_run(run_id)`` is called once it exists and
    ``on_metrics`` sees each metric after the tracker (``mldock tune``: a trial's parent and
    number, and its objective for early stopping).
    """
    config = session.config
    hyperparameters = merge_overrides(config.model.hyperparameters, overrides)
    channels = resolve_channels(session)
    _ = session.storage  # the model's store: a backend problem (a name clash…) stops us early
    image: str | None = None
    image_id: str | None = None
    pushed: str | None = None
    remote = session.remote and not no_container
    if not no_container:
        from mldock.imaging.request import require_image

        image = require_image(config, session.builder.exists)  # names the input that changed
        image_id = _image_id(image)
        if remote:
            from mldock.publish import push_for_target

            published = push_for_target(session, image, progress=progress)
            pushed = published.pinned if published else None
    platform = "local" if no_container or not remote else session.deployer_name
    commit, dirty = git_state(session.project_dir)
    tracker = session.tracker
    from mldock.training.reconcile import owner_tags

    tags = {**(tags or {}), "mldock.platform": platform, **owner_tags(),
            **_how_to_repeat(config.env, instances)}
    run_id = tracker.create_run(session.project, tags=tags)
    on_run(run_id)
    if not no_container and not remote and session.deployer_name == "local":
        from mldock.local.deploy import train_container_name
        from mldock.training.reconcile import TAG_CONTAINER

        # recorded before it starts: a killed 'mldock train' leaves the next command a way to it
        tracker.set_tags(run_id, {TAG_CONTAINER: train_container_name(run_id)})
    started = time.monotonic()
    log_path = session.run_dir(run_id) / LOG_NAME
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("a", encoding="utf-8", buffering=1)
    progress = _logged(log, progress)

    progress(f"run {run_id} started ({'local process' if no_container else image})")
    tracker.log_params(run_id, hyperparameters)
    lineage = Lineage(git_commit=commit, git_dirty=dirty, image=image, image_id=image_id,
                      image_digest=pushed,
                      config=dict(config.data), platform=platform,
                      inputs={name: ch.lineage() for name, ch in channels.items()})
    tracker.set_lineage(run_id, lineage)
    tracker.flush()
    session.notify("mldock_run_started", run_id=run_id, project=session.project, platform=platform)

    result: TrainingResult | None = None
    status, failure = RunStatus.FAILED, None
    try:
        sink = _tracker_sink(session, run_id, progress, also=on_metrics)
        folders = {name: ch.folder for name, ch in channels.items()}
        if no_container:
            from mldock.training.local_process import train_in_process

            result = train_in_process(session, run_id, hyperparameters, folders,
                                      progress=progress, on_metrics=sink)
        else:
            inputs = ({n: stage_channel(session, ch, progress) for n, ch in channels.items()}
                      if remote else {n: str(f) for n, f in folders.items()})
            environment = {} if remote else tracker.container_environment(
                run_id, project=session.project)
            job_image = pushed or image
            if job_image is None:  # a container run required its image above
                raise MldockError("no image to train in", hint="run 'mldock build'")
            job = TrainingJob(run_id=run_id, image=job_image,
                              hyperparameters=hyperparameters, inputs=inputs,
                              environment=environment,
                              output_uri=session.storage.uri_for(MODEL_KEY.format(run_id=run_id)),
                              options={"work_dir": str(session.run_dir(run_id) / "opt_ml"),
                                       "extra_hosts": tracker.container_extra_hosts(),
                                       **({"instance_count": instances} if instances else {})})
            result = session.deployer.train(job, progress=progress, on_metrics=sink)
        lineage.job_id = result.job_id
        tracker.set_lineage(run_id, lineage)
        status = RunStatus(result.status)
        failure = result.failure_reason
        if status is RunStatus.FINISHED and result.model_uri:
            _store_model(session, run_id, result.model_uri, progress)
    except KeyboardInterrupt:
        status, failure = RunStatus.KILLED, "interrupted"
        raise
    except BaseException as exc:
        status = RunStatus.FAILED
        failure = str(exc) or type(exc).__name__
        raise
    finally:
        try:
            tracker.flush()
        except MldockError as exc:  # finishing the run matters more; finish_run flushes again
            progress(f"warning: {exc.message}")
        tracker.finish_run(run_id, status, error=failure)
        tracker.flush()
        session.notify("mldock_run_finished", run=tracker.get_run(run_id))
        log.close()
    return RunOutcome(run_id, status, failure, time.monotonic() - started)


def stage_channel(session: Session, channel: Any, progress: ProgressSink) -> str:
    """A channel as a URI a remote job reads: storage URIs as given, local data uploaded."""
    if "://" in channel.source and not channel.source.startswith("file://"):
        return channel.source
    try:
        return session.storage.stage_data(channel.folder, channel.sha256, progress=progress)
    except NotImplementedError:
        raise MldockError(
            f"data channel {channel.name!r} is local, and storage {session.config.storage_uri}"
            f" cannot stage data for a {session.deployer_name} job",
            hint="set [storage] uri to cloud storage (e.g. s3://bucket/prefix) in this"
                 " environment, or give the channel as a storage URI", exit_code=2) from None


def _store_model(session: Session, run_id: str, model_uri: str, progress: ProgressSink) -> None:
    """Put the model folder into the project's store and attach it to the run.

    A remote target leaves its model in its own storage (``s3://…/model.tar.gz``): that URI is
    recorded as the run's model artifact as it is.
    """
    if "://" in model_uri and not model_uri.startswith("file://"):
        from mldock.interfaces import ArtifactRef

        session.tracker.log_artifact(run_id, ArtifactRef(
            key=MODEL_KEY.format(run_id=run_id), uri=model_uri, sha256="", size=0, kind="remote"))
        progress(f"model stored at {model_uri}")
        return
    folder = Path(model_uri.removeprefix("file://"))
    if not (folder / MANIFEST_NAME).is_file():
        raise MldockError(f"training finished but {folder} holds no mldock-model.json",
                          hint="the image's runtime writes it; rebuild with 'mldock build'")
    ref = session.storage.put_tree(folder, MODEL_KEY.format(run_id=run_id), progress=progress)
    session.tracker.log_artifact(run_id, ref)
    progress(f"model stored at {ref.uri}")


def _image_id(image: str) -> str | None:
    try:
        from mldock.local.engine import docker_client

        return docker_client().images.get(image).id
    except Exception:  # noqa: BLE001 - lineage is best effort for non-docker builders
        return None


def model_artifact(run: RunRecord) -> ArtifactRef | None:
    """The model artifact of a run, or ``None``."""
    key = MODEL_KEY.format(run_id=run.id)
    for artifact in run.artifacts:
        if artifact.key == key:
            return artifact
    return None
