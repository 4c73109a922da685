"""``mldock deploy``, ``mldock undeploy`` and ``mldock predict``: endpoints on the target."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mldock.cli.output import info, print_json, print_table
from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.runtime.names import MANIFEST_NAME

if TYPE_CHECKING:  # pragma: no cover
    from mldock.interfaces import ArtifactRef, Deployer, Prediction, RunRecord
    from mldock.session import Session

deploy_app = typer.Typer(help="Serve a run's model on the configured target.")
undeploy_app = typer.Typer(help="Stop and remove an endpoint.")
predict_app = typer.Typer(help="Send a request to a deployed endpoint.")


def _pick_run(session: Session, run_id: str | None) -> RunRecord:
    from mldock.interfaces import RunStatus

    tracker = session.tracker
    if run_id:
        run = tracker.get_run(run_id)
        if run.status is not RunStatus.FINISHED:
            raise UsageError(f"run {run.id} is {run.status.value}, not finished",
                             hint="deploy a finished run: mldock runs list")
        return run
    for run in tracker.list_runs(session.project, limit=200):
        if run.status is RunStatus.FINISHED:
            return run
    raise NotFoundError(f"no finished run of project {session.project!r}",
                        hint="train one first: mldock train")


def run_model(session: Session, run_id: str | None) -> tuple[RunRecord, ArtifactRef, str]:
    """(run, model artifact, image) to serve: the given or latest finished run, and the image it
    trained in (pushed reference first), else the current code's image."""
    from mldock.training.runner import model_artifact

    chosen = _pick_run(session, run_id)
    artifact = model_artifact(chosen)
    if artifact is None:
        raise NotFoundError(f"run {chosen.id} has no stored model", hint="retrain: mldock train")
    image = chosen.lineage.image_digest or chosen.lineage.image
    if not image:
        from mldock.imaging.request import image_for

        image = image_for(session.config)
    return chosen, artifact, image


def image_for_target(session: Session, run: RunRecord, image: str) -> str:
    """``image`` as the target runs it: pushed to a remote target's registry first (core's one
    push path, :func:`mldock.publish.push_for_target`), as it is for a local target."""
    from mldock.publish import push_for_target

    local = [run.lineage.image] if run.lineage.image not in (None, image) else []
    published = push_for_target(session, image, fallback=local, progress=info)
    return published.pinned if published else image


def local_model(session: Session, run_id: str, artifact: ArtifactRef) -> str | None:
    """A local copy of a stored model folder (fetched once), or ``None`` for a remote model
    (``s3://…/model.tar.gz`` a platform trained), which targets read where it is."""
    if artifact.kind == "remote":
        return None
    model_dir = session.state_dir / "models" / run_id
    if not (model_dir / MANIFEST_NAME).is_file():
        info(f"fetching the model of run {run_id} from {artifact.uri}")
        session.storage.get_tree(artifact.key, model_dir)
    return str(model_dir)


@deploy_app.command()
def deploy(
    run: str | None = typer.Option(None, "--run", "-r", metavar="RUN_ID",
                                      help="Run whose model to serve (default: latest finished)."),
    name: str | None = typer.Option(None, "--name", help="Endpoint name (default from config)."),
    port: int | None = typer.Option(
        None, "--port", min=0, max=65535,
        help="Local port (local target; default: the endpoint's current one, else a free one from"
             " 8080; 0: any free port)."),
    list_: bool = typer.Option(False, "--list", help="List endpoints instead of deploying."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create the endpoint, or update it in place, and print its URL once it answers."""
    from mldock.session import Session

    session = Session.open()
    deployer = session.deployer
    if list_:
        found = deployer.list()
        if json_:
            print_json([d.__dict__ for d in found])
        else:
            print_table(["name", "status", "url", "run", "image"],
                        [[d.name, d.status, d.url, d.run_id, d.image] for d in found])
        return
    chosen, artifact, image = run_model(session, run)
    from mldock.interfaces import DeployRequest

    image = image_for_target(session, chosen, image)
    request = DeployRequest(
        name=name or session.endpoint_name, image=image, model_uri=artifact.uri, run_id=chosen.id,
        options={"model_dir": local_model(session, chosen.id, artifact),
                 "model_key": artifact.key, "port": port,
                 "project": session.project})
    deployment = deployer.deploy(request, progress=info)
    session.notify("mldock_deployed", deployment=deployment, deployer=session.deployer_name)
    if json_:
        print_json(deployment.__dict__)
    else:
        info(f"endpoint {deployment.name} serves run {chosen.id}")
        print(deployment.url)


@undeploy_app.command()
def undeploy(name: str | None = typer.Argument(None,
                                               help="Endpoint (default from config).")) -> None:
    """Stop and remove the endpoint."""
    from mldock.session import Session

    session = Session.open()
    target = name or session.endpoint_name
    session.deployer.undeploy(target)
    info(f"endpoint {target} removed")


DEFAULT_MAX_PAYLOAD_MB = 6.0  # the serving runtime's own default (SageMaker's limit)
SNIFF_BYTES = 64 * 1024  # enough of the file to tell JSON from CSV
JSON_CHECK_BYTES = 8 * 1024 * 1024  # JSON files up to this size are checked before sending


def _too_big(data: str, size: int, limit: int) -> UsageError:
    return UsageError(f"--data {data}: {size / 2**20:.1f} MB is over the endpoint's request limit"
                      f" of {limit / 2**20:g} MB (MaxPayloadInMB)",
                      hint="split the payload into smaller requests, or raise the limit with"
                           " MLDOCK_MAX_PAYLOAD_MB in the serving container")


def _detect(head: bytes, suffix: str) -> str:
    stripped = head.lstrip()
    if suffix == ".csv" or (suffix != ".json" and stripped[:1] not in (b"{", b"[")):
        return "text/csv"
    return "application/json"


def _check_json(data: str, body: bytes) -> None:
    try:
        json.loads(body)
    except ValueError as exc:
        raise UsageError(f"--data {data}: not valid JSON ({exc})") from None
    except RecursionError:
        raise UsageError(f"--data {data}: JSON nested too deeply to send",
                         hint="flatten the payload; a few levels are enough") from None


def _read_payload(data: str, content_type: str | None, limit: int) -> tuple[bytes | Path, str]:
    """The request body and its type, refused with one line if over ``limit`` bytes. A file is
    measured, not read: its bytes are returned only if small, else its path (to stream from)."""
    if data == "-":
        body = sys.stdin.buffer.read(limit + 1)
        if len(body) > limit:
            raise _too_big(data, len(body), limit)
        suffix, size, head = "", len(body), body[:SNIFF_BYTES]
    else:
        path = Path(data)
        if not path.is_file():
            raise UsageError(f"--data {data}: no such file", hint="give a JSON or CSV file, or -")
        size, suffix = path.stat().st_size, path.suffix.lower()
        if size > limit:
            raise _too_big(data, size, limit)
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
        body = path.read_bytes() if size <= JSON_CHECK_BYTES else path
    content_type = content_type or _detect(head, suffix)
    if content_type == "application/json" and isinstance(body, bytes):
        _check_json(data, body)  # a larger file is checked by the endpoint
    if size <= SNIFF_BYTES and not head.strip():
        raise UsageError(f"--data {data}: empty payload")
    return body, content_type


def _payload_limit(deployer: Deployer, name: str) -> int:
    """Bytes the endpoint accepts: what it advertises, else the runtime's default."""
    advertised = getattr(deployer, "max_payload_bytes", None)
    limit = advertised(name) if advertised is not None else None
    return limit or int(DEFAULT_MAX_PAYLOAD_MB * 2**20)


def _send(deployer: Deployer, name: str, body: bytes | Path, content_type: str,
          accept: str) -> Prediction:
    """Send the body; a file is streamed to a deployer that can take one, else read (it is
    within the limit, so bounded)."""
    if isinstance(body, Path):
        if getattr(deployer, "streams_requests", False):
            with body.open("rb") as handle:
                # the interface says bytes; a deployer declaring streams_requests also takes a
                # binary file (the local one does), which keeps a large payload off the heap
                return deployer.predict(name, handle,  # type: ignore[arg-type]
                                        content_type=content_type, accept=accept)
        body = body.read_bytes()
    return deployer.predict(name, body, content_type=content_type, accept=accept)


@predict_app.command()
def predict(
    data: str = typer.Option(..., "--data", "-d", help="JSON or CSV file, or - for stdin."),
    name: str | None = typer.Option(None, "--name", help="Endpoint (default from config)."),
    content_type: str | None = typer.Option(None, "--content-type",
                                               help="Override the detected content type."),
    accept: str = typer.Option("application/json", "--accept", help="Response format wanted."),
) -> None:
    """Send the payload to the endpoint and print its answer."""
    from mldock.session import Session

    if data != "-" and not Path(data).is_file():
        raise UsageError(f"--data {data}: no such file", hint="give a JSON or CSV file, or -")
    session = Session.open()
    target = name or session.endpoint_name
    body, detected = _read_payload(data, content_type, _payload_limit(session.deployer, target))
    answer = _send(session.deployer, target, body, detected, accept)
    text = answer.body.decode("utf-8", "replace")
    if answer.status >= 400:
        try:
            message = json.loads(text).get("error", text)
        except (ValueError, AttributeError):
            message = text
        raise MldockError(f"the endpoint answered {answer.status}: {message.strip()}",
                          exit_code=1 if answer.status >= 500 else 2)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
