"""Copy a run's local artifacts into MLflow's artifact store.

An :class:`~mldock.interfaces.ArtifactRef` names where mldock stored an artifact. When that is on
this machine (a ``file://`` URI) MLflow should hold the files too, so the MLflow UI, ``mlflow
models serve`` and the model registry can use them. Two shapes are handled:

* the URI is a plain folder or file: it is uploaded as it is;
* the URI points into mldock's own content-addressed store (``<root>/<key>``, whose files live as
  blobs under ``<root>/blobs``): the tree is first materialised into a temporary folder with the
  store's verified ``get_tree``/``get_file``, then uploaded. The store is opened by the session's
  ``open_store`` (:attr:`mldock.FactoryContext.open_store`), so this plugin never imports core's
  store implementation.

Remote URIs (``s3://``, ``gs://``, …) are only recorded: their files already live in a store.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mldock.interfaces import ArtifactRef, ArtifactStore

OpenStore = Callable[[str], ArtifactStore]
"""``open_store(uri)``: the project's artifact store rooted at ``uri``."""


def local_path(uri: str) -> Path | None:
    """The path of a ``file://`` URI (``None`` for any other scheme)."""
    parts = urlsplit(uri)
    if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
        return None
    return Path(unquote(parts.path))


def _store_root(ref: ArtifactRef) -> Path | None:
    """The root of mldock's local store holding ``ref``, if ``ref.uri`` is ``<root>/<key>``."""
    path = local_path(ref.uri)
    if path is None or not ref.uri.rstrip("/").endswith("/" + ref.key):
        return None
    root = Path(str(path)[: -len(ref.key)].rstrip("/") or "/")
    return root if (root / "refs").is_dir() else None


@contextmanager
def materialized(ref: ArtifactRef, open_store: OpenStore | None = None) -> Iterator[Path | None]:
    """A local folder (tree) or file holding the artifact's content, or ``None`` if not local.

    A file is always yielded under the key's base name, which becomes its MLflow name.
    """
    path = local_path(ref.uri)
    if path is None:
        yield None
        return
    name = ref.key.rstrip("/").rsplit("/", 1)[-1]
    with tempfile.TemporaryDirectory(prefix="mldock-mlflow-") as tmp:
        if path.is_dir() and not (path / ".mldock-ref").exists():
            yield path
            return
        if path.is_file():
            if path.name == name:
                yield path
            else:
                target = Path(tmp, name)
                shutil.copyfile(path, target)
                yield target
            return
        root = _store_root(ref)
        if root is None or open_store is None:
            yield None
            return
        store = open_store(root.as_uri())
        if not store.exists(ref.key):
            yield None
            return
        if ref.kind == "tree":
            yield store.get_tree(ref.key, Path(tmp, name))
        else:
            yield store.get_file(ref.key, Path(tmp, name))


def upload(client: object, run_id: str, ref: ArtifactRef, artifact_path: str,
           open_store: OpenStore | None = None) -> bool:
    """Upload the artifact's files under ``artifact_path``; ``False`` when it is not local."""
    with materialized(ref, open_store) as source:
        if source is None:
            return False
        if source.is_dir():
            client.log_artifacts(run_id, os.fspath(source), artifact_path)  # type: ignore[attr-defined]
        else:
            parent = artifact_path.rpartition("/")[0] or None
            client.log_artifact(run_id, os.fspath(source), parent)  # type: ignore[attr-defined]
    return True
