"""``mldock build`` and ``mldock push``: build the project's one image, push it to a registry.

The tag (or digest) goes to stdout, alone, so scripts can capture it; progress goes to stderr: a
status line with the current step on a terminal, plain lines otherwise (CI logs), nothing with
``--quiet`` (but a failed step's last lines are still shown with the error).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

from mldock.cli.output import info, is_terminal, print_json
from mldock.errors import MldockError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from mldock.config import ResolvedConfig
    from mldock.imaging.request import BuildPlan
    from mldock.interfaces import Builder, BuildResult, ProgressSink
    from mldock.publish import PublishedImage

app = typer.Typer(help="Build the project's image (skipped when unchanged).", add_completion=False)
push_app = typer.Typer(help="Push the project's image to a registry.", add_completion=False)

_REPOSITORY = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$")


@app.command("build")
def build_command(
    json_: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Show no build progress."),
    explain: bool = typer.Option(
        False, "--explain",
        help="Say which inputs changed since the last build (with --json: a 'changes' list)."),
) -> None:
    """Build the image for the current code; nothing is built when its inputs are unchanged."""
    from mldock.imaging.request import plan_build

    config = _config()
    builder = _builder(config)
    plan = plan_build(config)
    changed = explain_changes(config, plan, builder.exists(plan.tag)) if explain else None
    if changed is not None and not json_:
        for line in changed:
            info(line)
    with _progress(quiet or json_) as progress:
        result = run_build(config, builder, progress, plan=plan)
    if json_:
        data = _result_json(result)
        if changed is not None:
            data["changes"] = changed
        print_json(data)
        return
    _report(result)
    print(result.tag)


@push_app.command("push")
def push_command(
    repository: str | None = typer.Option(
        None, "--repository", "-r", metavar="HOST/REPO",
        help="Registry repository, e.g. localhost:5000/iris (the tag is the image's own);"
             " default: the registry of the configured cloud deployer (ECR, ACR, …)."),
    username: str | None = typer.Option(None, "--username", "-u", help="Registry user name."),
    password_env: str | None = typer.Option(
        None, "--password-env", metavar="VAR",
        help="Name of the environment variable holding the registry password or token."),
    json_: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Show no progress."),
) -> None:
    """Build the image if needed, push it (unless the registry has it), print its digest."""
    from mldock.interfaces import RegistryTarget
    from mldock.publish import publish

    config = _config()
    builder = _builder(config, need_push=True)
    target = (None if repository is None else
              RegistryTarget(check_repository(repository), _auth(username, password_env)))
    with _progress(quiet or json_) as progress:
        result = run_build(config, builder, progress)
        if target is None:
            pushed = _push_to_deployer(config, result.tag, progress)
        else:
            pushed = publish(result.tag, target, builder, progress=progress)
    if json_:
        print_json({"reference": pushed.reference, "digest": pushed.digest, "image": result.tag,
                    "built": not result.skipped, "pushed": pushed.pushed})
        return
    info(f"{'pushed' if pushed.pushed else 'already in the registry:'} {pushed.reference}")
    print(pushed.digest)


def run_build(config: ResolvedConfig, builder: Builder, progress: ProgressSink, *,
              plan: BuildPlan | None = None) -> BuildResult:
    """Make the request, call the build lifecycle hooks around the build, return the result.

    After a successful build (or a skipped one: the image exists) the inputs manifest is recorded
    as the project's last build, which ``--explain`` and ``train``'s stale-image error compare to.
    """
    from mldock.host import get_host
    from mldock.imaging.explain import write_record
    from mldock.imaging.request import plan_build

    registry = get_host().registry
    plan = plan or plan_build(config)
    registry.notify("mldock_before_build", project_dir=config.project_dir, request=plan.request)
    result = builder.build(plan.request, progress=progress)
    try:
        write_record(config.project_dir, result.tag, plan.manifest)
    except OSError as exc:  # a read-only project folder must not fail a good build
        progress(f"warning: could not record the build inputs: {exc.strerror or exc}")
    registry.notify("mldock_after_build", project_dir=config.project_dir, result=result)
    return result


def explain_changes(config: ResolvedConfig, plan: BuildPlan, exists: bool) -> list[str]:
    """Lines saying why ``plan`` builds or not: the inputs changed since the last build, and
    whether ``plan.tag`` is already in the engine (``exists``)."""
    from mldock.imaging.explain import summary
    from mldock.imaging.request import explain

    try:
        lines = explain(config, plan)
    except LookupError:
        state = "exists: nothing to build" if exists else "is not built yet: building"
        return [(f"{plan.tag} {state} (no record of a previous build of this project in"
                 " .mldock/build/ to compare with)")]
    if not lines:
        if exists:
            return [f"{plan.tag} is up to date: no input changed since the last build"]
        return [(f"{plan.tag}: no input changed since the last build, but the image is no"
                 " longer in the engine: rebuilding")]
    head = (f"{plan.tag} exists already (built before): nothing to build, although"
            if exists else f"{plan.tag}: rebuilding,")
    count = f"{len(lines)} input{'s' if len(lines) > 1 else ''}"
    return [f"{head} {count} changed since the last build:",
            *(f"  {line}" for line in summary(lines))]


def _push_to_deployer(config: ResolvedConfig, tag: str, progress: ProgressSink) -> PublishedImage:
    """Push ``tag`` where the configured deployer pulls from (core's one push path, with the
    deployer's fresh credentials), or a usage error for a deployer without a registry."""
    from mldock.host import get_host
    from mldock.publish import push_for_target
    from mldock.session import Session

    session = Session(config, get_host().registry)
    pushed = push_for_target(session, tag, progress=progress)
    if pushed is None:
        raise UsageError(f"deployer {session.deployer_name!r} has no registry to push to",
                         hint="give --repository HOST/REPO, or choose a cloud target with --env")
    return pushed


def check_repository(repository: str) -> str:
    """``HOST/REPO`` without a tag or digest; the tag is always the image's input hash."""
    value = repository.strip().rstrip("/")
    last = value.rsplit("/", 1)[-1]
    if "@" in value or ":" in last:
        raise UsageError(f"--repository {repository!r} must not carry a tag or digest",
                         hint="give HOST/REPO; mldock pushes the image's own tag")
    if not _REPOSITORY.match(value):
        raise UsageError(f"--repository {repository!r} is not HOST/REPO",
                         hint="e.g. localhost:5000/iris or 123456789012.dkr.ecr.eu-west-1"
                              ".amazonaws.com/iris")
    return value


# --- helpers ----------------------------------------------------------------------------------


def _config() -> ResolvedConfig:
    from mldock.cli.state import load_project_config

    return load_project_config()


def _builder(config: ResolvedConfig, *, need_push: bool = False) -> Builder:
    from mldock.host import get_host
    from mldock.session import Session

    session = Session(config, get_host().registry)
    if need_push and "push" not in session.builder_record.capabilities:
        raise MldockError(f"builder {session.builder_name!r} cannot push images",
                          hint="use a builder with the 'push' capability, e.g. 'docker'")
    return session.builder


def _auth(username: str | None, password_env: str | None) -> dict[str, str] | None:
    """``--username``/``--password-env`` credentials, or ``None``: the engine's own login
    (``docker login``, credential helpers). A cloud target's token comes from its deployer."""
    if username is None and password_env is None:
        return None
    if not username or not password_env:
        raise UsageError("--username and --password-env go together",
                         hint="pass both, or neither to use 'docker login' credentials")
    password = os.environ.get(password_env)
    if not password:
        raise UsageError(f"environment variable {password_env} is not set (it should hold the"
                         " registry password)", hint=f"export {password_env}=… before pushing")
    return {"username": username, "password": password}


@contextmanager
def _progress(quiet: bool) -> Iterator[ProgressSink]:
    """A progress sink for the build: rich status, plain stderr lines, or silence.

    A failed build re-raises after showing the failing step's last lines if they were not printed.
    """
    from mldock.imaging import BuildFailedError

    if quiet:
        try:
            yield _drop
        except BuildFailedError as exc:
            _show_tail(exc.log_tail)
            raise
        return
    if not (is_terminal() and sys.stderr.isatty()):
        yield info
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True)
    with console.status("preparing the build…") as status:
        def sink(line: str) -> None:
            text = line.strip()
            if text.startswith("Step "):
                console.print(f"[dim]{escape(text)}[/dim]", highlight=False, no_wrap=True,
                              overflow="ellipsis")
                status.update(escape(text))
            elif text:
                status.update(escape(text[:120]))

        try:
            yield sink
        except BuildFailedError as exc:
            status.stop()
            _show_tail(exc.log_tail)
            raise


def _drop(line: str) -> None:
    """Progress sink for ``--quiet``."""


def _show_tail(lines: tuple[str, ...]) -> None:
    for line in lines:
        print(line, file=sys.stderr)


def _report(result: Any) -> None:
    if result.skipped:
        info(f"{result.tag}: up to date, nothing built")
    else:
        info(f"built {result.tag} in {result.seconds:.1f} s ({result.size / 1e6:.0f} MB)")


def _result_json(result: Any) -> dict[str, Any]:
    return {"tag": result.tag, "image_id": result.image_id, "skipped": result.skipped,
            "seconds": round(result.seconds, 3), "size": result.size}


__all__ = ["app", "check_repository", "push_app", "run_build"]
