"""``gs://`` locations on Vertex AI: the ``/gcs`` mount when present, else google-cloud-storage.

Vertex AI training mounts buckets under ``/gcs/<bucket>/…`` (Cloud Storage FUSE); serving does not
mount ``AIP_STORAGE_URI``, so the model has to be downloaded. google-cloud-storage is imported only
here and only when a download or upload is really needed: the image does not have to carry it.
"""

from __future__ import annotations

from pathlib import Path

INSTALL_HINT = ("add google-cloud-storage to the project's requirements.txt and rebuild the image"
                " (it downloads gs:// locations that Vertex AI does not mount)")


class GcsUnavailable(RuntimeError):
    """A gs:// location must be fetched but google-cloud-storage is not installed."""


def is_gs(uri: str | None) -> bool:
    return bool(uri) and str(uri).startswith("gs://")


def split(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> (``bucket``, ``a/b``)."""
    bucket, _, prefix = uri[len("gs://"):].partition("/")
    return bucket, prefix


def mounted_path(uri: str, root: Path) -> Path | None:
    """The FUSE path of ``uri`` under ``root`` (``/gcs``) if that bucket is mounted, else None."""
    bucket, prefix = split(uri)
    if not bucket or not (root / bucket).is_dir():
        return None
    return root / bucket / prefix


def available() -> bool:
    """Is google-cloud-storage importable? Checked without importing it."""
    from importlib.util import find_spec

    try:
        return find_spec("google.cloud.storage") is not None
    except (ImportError, ValueError):
        return False


def _client():
    try:
        from google.cloud import storage  # optional, heavy: only here
    except ImportError as exc:
        raise GcsUnavailable(f"cannot fetch a gs:// location: {INSTALL_HINT}") from exc
    return storage.Client()


def download(uri: str, dest: Path) -> Path:
    """Copy every object under the ``uri`` prefix into ``dest`` (keeping relative paths)."""
    bucket_name, prefix = split(uri)
    client = _client()
    dest.mkdir(parents=True, exist_ok=True)
    base = prefix.rstrip("/")
    for blob in client.list_blobs(bucket_name, prefix=prefix):
        if blob.name.endswith("/"):
            continue
        rel = blob.name[len(base):].lstrip("/") if base else blob.name
        target = dest / (rel or Path(blob.name).name)
        target.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(target))
    return dest


def upload(source: Path, uri: str) -> None:
    """Copy every file under ``source`` to the ``uri`` prefix."""
    bucket_name, prefix = split(uri)
    bucket = _client().bucket(bucket_name)
    for path in sorted(source.rglob("*")):
        if path.is_file():
            name = "/".join(filter(None, [prefix.rstrip("/"), path.relative_to(source).as_posix()]))
            bucket.blob(name).upload_from_filename(str(path))
