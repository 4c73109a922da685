"""``mldock runs export``: a run's model written out as a plain folder, whole or not at all.

The model is fetched through the :class:`~mldock.interfaces.ArtifactStore` that holds it (the
project's store, or the store recorded with the run when it differs, e.g. S3 from ``--env aws``),
so every file is verified against the stored hashes. It is staged in a temp sibling of the target
and renamed into place, so a failed or interrupted export never leaves a half-written folder, and a
non-empty target is replaced only with ``--force`` (the old folder is removed after the rename).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.interfaces.common import ProgressSink

if TYPE_CHECKING:  # pragma: no cover
    from mldock.interfaces import ArtifactRef, ArtifactStore, RunRecord
    from mldock.session import Session


@dataclass
class ExportResult:
    """Where a run's model went, for ``--json`` and the closing line."""

    run_id: str
    key: str
    store: str | None
    uri: str | None
    dir: str
    files: int
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def default_dir(run_id: str) -> Path:
    """``./<run-id>-model``: next to where the user is, named so two exports never meet."""
    return Path.cwd() / f"{run_id}-model"


def check_target(dest: Path, force: bool, keep: tuple[Path, ...] = ()) -> None:
    """Refuse a target that is a file, a folder holding one of ``keep`` (the folder the user is
    in, the project), or a non-empty folder without ``--force``."""
    resolved = dest.resolve()
    for folder in keep:
        if folder.resolve() == resolved or resolved in folder.resolve().parents:
            raise UsageError(f"cannot export into {dest}: it holds {folder}, which would be"
                             " replaced", hint="give a new folder name as DIR")
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise UsageError(f"cannot export into {dest}: it is not a folder",
                         hint="give a new folder name as DIR")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise UsageError(f"{dest} is not empty",
                         hint="give a new folder as DIR, or add --force to replace it")


@contextmanager
def staged_export(dest: Path) -> Iterator[Path]:
    """A temp sibling of ``dest`` (same file system) renamed to ``dest`` when the block succeeds.

    An existing ``dest`` (checked by :func:`check_target`) is moved aside first and removed only
    once the new folder is in place; on failure the staging folder goes and ``dest`` is untouched.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".export", dir=dest.parent))
    try:
        yield staging / "model"
        old = None
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
            os.rename(dest, old / "previous")
        os.rename(staging / "model", dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _store_of(session: Session, artifact: ArtifactRef) -> ArtifactStore:
    """The store that holds ``artifact``: the project's, or the one recorded with the run."""
    from mldock.interfaces.tracking import store_root

    root = store_root(artifact)
    if root is None:
        raise MldockError(f"artifact {artifact.key!r} is recorded as {artifact.uri}, which names"
                          " no artifact store", hint="export needs a run trained by mldock")
    if root.rstrip("/") == session.storage.uri.rstrip("/"):
        return session.storage
    return session.storage_for(root)


def _fetch_remote(session: Session, uri: str, target: Path, progress: ProgressSink) -> None:
    """A platform's own ``model.tar.gz`` (a run trained in the cloud), downloaded and unpacked."""
    download = target.parent / "download"
    try:
        session.storage_for(uri).fetch(uri, download, progress=progress)
    except NotImplementedError:
        raise MldockError(f"no installed storage can download {uri}",
                          hint="install the plugin for its scheme (e.g. mldock-s3)") from None
    archives = sorted(download.rglob("*.tar.gz"))
    if len(archives) != 1:
        raise MldockError(f"{uri} is not one model.tar.gz", hint="export runs trained by mldock")
    with tarfile.open(archives[0], "r:gz") as archive:
        archive.extractall(target, filter="data")  # no absolute paths, links out or devices


def export_model(session: Session, run: RunRecord, dest: Path, *, force: bool,
                 progress: ProgressSink) -> ExportResult:
    """Write the model of ``run`` to ``dest`` (see the module docstring for the guarantees)."""
    from mldock.cas.hashing import hash_tree
    from mldock.training.runner import model_artifact

    artifact = model_artifact(run)
    if artifact is None:
        raise NotFoundError(f"run {run.id} ({run.status.value}) has no stored model",
                            hint="export a finished run: mldock runs list")
    check_target(dest, force, keep=(Path.cwd(), session.project_dir))
    store_uri, uri = None, None
    if artifact.kind == "remote":
        uri = artifact.uri
        with staged_export(dest) as target:
            _fetch_remote(session, artifact.uri, target, progress)
    else:
        store = _store_of(session, artifact)
        store_uri = store.uri
        with staged_export(dest) as target:
            if artifact.kind == "tree":
                store.get_tree(artifact.key, target, progress=progress)
            else:
                target.mkdir()
                store.get_file(artifact.key, target, progress=progress)
    manifest, digest = hash_tree(dest)
    return ExportResult(run_id=run.id, key=artifact.key, store=store_uri, uri=uri, dir=str(dest),
                        files=len(manifest), size=sum(e["size"] for e in manifest.values()),
                        sha256=digest)
