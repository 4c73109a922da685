"""Every hook a plugin may implement, in one module.

Two kinds of hooks:

* **Registration hooks** (``mldock_builders`` … ``mldock_templates``) return an iterable of frozen
  records describing what the plugin contributes. They must be cheap: no SDK imports, no I/O.
  Only :mod:`mldock.host.registry` calls them.
* **Lifecycle hooks** (``mldock_before_build`` … ``mldock_deployed``) are broadcasts that let a
  plugin react to what mldock does (notify, tag, audit). Their return values are ignored; an
  exception in one is reported as a warning and never fails the command.

Implement a hook with the ``mldock.hookimpl`` marker in the module named by your entry point::

    # pyproject.toml
    [project.entry-points.mldock]
    myplugin = "mldock_myplugin.plugin"

The reference with every signature and an example plugin per hook is ``docs/hooks.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mldock.markers import hookspec

if TYPE_CHECKING:  # pragma: no cover
    from mldock.interfaces import BuildRequest, BuildResult, Deployment, RunRecord
    from mldock.records import (
        BuilderRecord,
        CommandRecord,
        DeployerRecord,
        StorageRecord,
        TemplateRecord,
        TrackerRecord,
    )


# --- registration ---------------------------------------------------------------------------


@hookspec
def mldock_builders() -> Iterable[BuilderRecord]:
    """Register image builders, selected by ``[build] builder = "<name>"``.

    Example::

        @hookimpl
        def mldock_builders():
            return [BuilderRecord(name="kaniko", summary="Build in-cluster with kaniko",
                                  factory=make_kaniko_builder)]
    """


@hookspec
def mldock_storages() -> Iterable[StorageRecord]:
    """Register artifact stores, selected by the scheme of ``[storage] uri``.

    Example::

        @hookimpl
        def mldock_storages():
            return [StorageRecord(name="s3", summary="Amazon S3 and compatible stores",
                                  schemes=("s3",), factory=make_s3_store,
                                  config_model="mldock_s3.config:S3Options")]
    """


@hookspec
def mldock_trackers() -> Iterable[TrackerRecord]:
    """Register run trackers, picked by the scheme of ``[tracking] uri`` or ``[tracking] backend``.

    Example::

        @hookimpl
        def mldock_trackers():
            return [TrackerRecord(name="mlflow", summary="MLflow tracking server",
                                  schemes=("mlflow+http", "mlflow+https"), factory=make_tracker)]
    """


@hookspec
def mldock_deployers() -> Iterable[DeployerRecord]:
    """Register deployers (training jobs and endpoints), selected by ``[deploy] deployer``.

    Example::

        @hookimpl
        def mldock_deployers():
            return [DeployerRecord(name="sagemaker", summary="AWS SageMaker",
                                   factory=make_deployer,
                                   capabilities=frozenset({"training", "serving", "batch"}))]
    """


@hookspec
def mldock_commands() -> Iterable[CommandRecord]:
    """Register extra CLI command groups (``mldock <name> …``), loaded only when used.

    Example::

        @hookimpl
        def mldock_commands():
            return [CommandRecord(name="aws", summary="AWS helpers", factory=make_aws_app)]
    """


@hookspec
def mldock_templates() -> Iterable[TemplateRecord]:
    """Register project templates for ``mldock init --template <name>``.

    Example::

        @hookimpl
        def mldock_templates():
            return [TemplateRecord(name="pytorch", summary="PyTorch classifier",
                                   location=str(Path(__file__).parent / "templates" / "pytorch"))]
    """


# --- lifecycle ------------------------------------------------------------------------------


@hookspec
def mldock_before_build(project_dir: Path, request: BuildRequest) -> None:
    """Called before an image build starts (also when it will be skipped as up to date).

    Example::

        @hookimpl
        def mldock_before_build(project_dir, request):
            print(f"building {request.tag} from {project_dir}")
    """


@hookspec
def mldock_after_build(project_dir: Path, result: BuildResult) -> None:
    """Called after an image build succeeded (``result.skipped`` when nothing was built).

    Example::

        @hookimpl
        def mldock_after_build(project_dir, result):
            audit_log.write(f"{result.tag} {result.image_id}\\n")
    """


@hookspec
def mldock_run_started(run_id: str, project: str, platform: str) -> None:
    """Called when a run is created, before training starts.

    Example::

        @hookimpl
        def mldock_run_started(run_id, project, platform):
            slack.post(f"{project}: run {run_id} started on {platform}")
    """


@hookspec
def mldock_run_finished(run: RunRecord) -> None:
    """Called when a run reached a terminal status (finished, failed or killed).

    Example::

        @hookimpl
        def mldock_run_finished(run):
            if run.status.value == "failed":
                pager.alert(run.id, run.error)
    """


@hookspec
def mldock_deployed(deployment: Deployment, deployer: str) -> None:
    """Called when an endpoint was created or updated and answered ready.

    Example::

        @hookimpl
        def mldock_deployed(deployment, deployer):
            print(f"{deployment.name} is live at {deployment.url} ({deployer})")
    """
