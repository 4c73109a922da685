"""A local model folder as SageMaker wants it: ``model.tar.gz`` in S3, extracted to /opt/ml/model.

Runs trained on SageMaker already have their ``model.tar.gz``; a run trained locally has a model
folder (fetched by core into ``.mldock/models/<run>``), packed here and uploaded under
``<output_path>/models/<run id>/model.tar.gz``. The archive is reproducible (sorted entries, zeroed
owners and times, no gzip timestamp), so its SHA-256, stored as object metadata, tells whether the
upload can be skipped on the next deploy of the same run.
"""

from __future__ import annotations

import gzip
import os
import tarfile
import tempfile
from pathlib import Path

from mldock.cas import sha256_file
from mldock.errors import MldockError, UsageError
from mldock.interfaces import ProgressSink, null_progress
from mldock.runtime.names import MANIFEST_NAME
from mldock.trees import open_entry, walk_contained

from mldock_aws.clients import AwsClients

MANIFEST = MANIFEST_NAME
SHA_METADATA = "mldock-sha256"


def pack(model_dir: Path, archive: Path) -> str:
    """Write ``model_dir``'s files (at the archive's root) to ``archive``; return its SHA-256.

    The folder is walked by :func:`mldock.trees.walk_contained`: a link leaving it, a FIFO or a
    device file is an error naming it, and a link inside it is archived as a copy of its target.
    """
    entries = walk_contained(model_dir)  # before the archive exists: a refusal writes nothing
    with open(archive, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            with open_entry(entry) as handle:
                info = tarfile.TarInfo(entry.rel)
                info.size = os.fstat(handle.fileno()).st_size
                info.mode = entry.mode
                info.mtime = 0
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, handle)
    return sha256_file(archive)


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


def model_data_url(clients: AwsClients, *, model_uri: str, model_dir: str | None, run_id: str,
                   output_path: str, progress: ProgressSink = null_progress) -> str:
    """The S3 URI of the ``model.tar.gz`` SageMaker loads.

    A run trained on SageMaker has one (``model_uri``). Any other run's model is a folder: an
    artifact of the project's store (``s3://…/runs/<id>/model`` is a content-addressed tree,
    not an archive), fetched by core into ``model_dir``, or a local path; it is packed and
    uploaded here.
    """
    if model_uri.startswith("s3://") and model_uri.endswith(".tar.gz"):
        return model_uri
    folder = local_folder(model_uri, model_dir)
    if folder is None:
        raise UsageError(f"the model at {model_uri} is not a model.tar.gz and no local copy of"
                         " it was given", hint="deploy a run trained with --env aws, or fetch"
                                               " the model first (mldock deploy does)")
    if not (folder / MANIFEST).is_file():
        raise MldockError(f"{folder} holds no trained model (no {MANIFEST})",
                          hint="train first: mldock train", exit_code=4)
    from botocore.exceptions import ClientError
    from mldock_s3.errors import translated as s3_translated
    from mldock_s3.location import S3Location

    target = S3Location.parse(output_path).child("models", run_id, "model.tar.gz")
    s3 = clients.s3
    with tempfile.TemporaryDirectory(prefix="mldock-model-") as temp:
        archive = Path(temp) / "model.tar.gz"
        digest = pack(folder, archive)
        with s3_translated(f"upload the model of run {run_id}", bucket=target.bucket,
                           key=target.prefix, endpoint=clients.endpoint_of("s3")):
            try:
                head = s3.head_object(Bucket=target.bucket, Key=target.prefix)
                if head.get("Metadata", {}).get(SHA_METADATA) == digest:
                    progress(f"model of run {run_id} already at {target.uri}")
                    return target.uri
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey",
                                                                       "NotFound"):
                    raise
            size = archive.stat().st_size
            progress(f"uploading the model of run {run_id} ({size / 1e6:.1f} MB) to {target.uri}")
            s3.upload_file(str(archive), target.bucket, target.prefix,
                           ExtraArgs={"Metadata": {SHA_METADATA: digest},
                                      "ContentType": "application/gzip"})
    return target.uri
