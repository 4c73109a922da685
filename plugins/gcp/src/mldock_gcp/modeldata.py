"""A model as Vertex AI wants it: a plain ``gs://`` folder, the model's ``artifactUri``.

A run trained on Vertex already has one (the job's ``AIP_MODEL_DIR``, ``gs://…/model``). Any
other run's model is a local folder: fetched by core into ``.mldock/models/<run>`` from the
project's store (whose ``runs/<id>/model`` is a content-addressed tree, not a plain folder Vertex
could read), or a path. It is copied file by file under ``<staging>/models/<run id>/``, where the
serving runtime downloads it (``AIP_STORAGE_URI``). Each object carries the file's SHA-256 as
metadata, so a second deploy of the same run sends nothing; the manifest goes last, so a folder
that has one is complete, and objects the model no longer has are removed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mldock.cas import sha256_file
from mldock.errors import MldockError, UsageError
from mldock.interfaces import ProgressSink, null_progress
from mldock.runtime.names import MANIFEST_NAME
from mldock.trees import TreeEntry, open_entry, walk_contained

from mldock_gcp.clients import VertexClients
from mldock_gcp.config import GcsOptions
from mldock_gcp.connection import connect
from mldock_gcp.errors import translated
from mldock_gcp.location import GcsLocation

SHA_METADATA = "mldock-sha256"


def split_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` → ``("bucket", "a/b")``; a one-line error naming a bad URI."""
    location = GcsLocation.parse(uri)
    return location.bucket, location.prefix


def local_folder(model_uri: str, model_dir: str | None) -> Path | None:
    """The local model folder: ``model_dir`` if given, else ``model_uri`` when it is a path."""
    if model_dir:
        return Path(model_dir)
    if model_uri.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        return Path(unquote(urlsplit(model_uri).path))
    if "://" not in model_uri and model_uri:
        return Path(model_uri)
    return None


def storage_client(clients: VertexClients) -> Any:
    """A google-cloud-storage client as the ``gs://`` store makes one (retries, timeouts, the
    emulator of ``STORAGE_EMULATOR_HOST``), with the deployer's key file when one is named."""
    return connect(GcsOptions(credentials_file=clients.options.credentials_file)).client


def artifact_uri(clients: VertexClients, *, model_uri: str, model_dir: str | None, run_id: str,
                 staging: str, progress: ProgressSink = null_progress) -> str:
    """The ``gs://`` folder holding the model of ``run_id``, uploaded there if need be."""
    if model_dir is None and model_uri.startswith("gs://"):
        return model_uri.rstrip("/")  # trained on Vertex: AIP_MODEL_DIR is the folder
    folder = local_folder(model_uri, model_dir)
    if folder is None:
        raise UsageError(f"the model at {model_uri} is not a gs:// folder and no local copy of"
                         " it was given", hint="deploy a run trained with --env gcp, or fetch"
                                               " the model first (mldock deploy does)")
    if not (folder / MANIFEST_NAME).is_file():
        raise MldockError(f"{folder} holds no trained model (no {MANIFEST_NAME})",
                          hint="train first: mldock train", exit_code=4)
    bucket, prefix = split_uri(staging)
    target = "/".join(p for p in (prefix, "models", run_id) if p)
    upload_folder(storage_client(clients), folder, bucket, target, progress=progress,
                  what=f"the model of run {run_id}")
    return f"gs://{bucket}/{target}"


def upload_folder(client: Any, folder: Path, bucket_name: str, prefix: str, *,
                  progress: ProgressSink = null_progress, what: str = "the model") -> int:
    """Make ``gs://bucket/prefix/`` hold exactly ``folder``'s files; return the bytes sent."""
    entries = walk_contained(folder)  # a link out of the folder is refused before any upload
    uri = f"gs://{bucket_name}/{prefix}"
    bucket = client.bucket(bucket_name)
    # listing fails only on the bucket: named alone, a 404 reads "bucket … does not exist"
    with translated(f"upload {what} to {uri}", resource=f"gs://{bucket_name}"):
        stored = {blob.name: (blob.metadata or {}).get(SHA_METADATA)
                  for blob in client.list_blobs(bucket, prefix=prefix + "/")}
    with translated(f"upload {what} to {uri}", resource=uri):
        digests = {entry.rel: sha256_file(entry.path) for entry in entries}
        pending = [e for e in entries if stored.get(f"{prefix}/{e.rel}") != digests[e.rel]]
        if not pending and len(stored) == len(entries):
            progress(f"{what} already at {uri}")
            return 0
        size = sum(entry.size for entry in pending)
        progress(f"uploading {what} ({len(pending)} files, {size / 1e6:.1f} MB) to {uri}")
        # the manifest last: a folder that has one is complete
        pending.sort(key=lambda entry: entry.rel == MANIFEST_NAME)
        for entry in pending:
            _upload(bucket, entry, f"{prefix}/{entry.rel}", digests[entry.rel])
        wanted = {f"{prefix}/{entry.rel}" for entry in entries}
        for name in sorted(set(stored) - wanted):
            bucket.blob(name).delete()
    return size


def _upload(bucket: Any, entry: TreeEntry, name: str, digest: str) -> None:
    blob = bucket.blob(name)
    blob.metadata = {SHA_METADATA: digest}
    with open_entry(entry) as handle:
        blob.upload_from_file(handle, size=os.fstat(handle.fileno()).st_size,
                              content_type="application/octet-stream")
