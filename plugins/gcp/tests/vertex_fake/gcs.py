"""Reading and writing ``gs://`` objects on the emulator for batch jobs (google-cloud-storage)."""

from __future__ import annotations

import fnmatch
from typing import Any


def client(fake: Any) -> Any:
    """An anonymous storage client on ``fake.storage_emulator``."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    if not fake.storage_emulator:
        raise RuntimeError("the fake has no storage emulator: batch jobs need one")
    return storage.Client(project=fake.project, credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": fake.storage_emulator})


def split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("gs://").partition("/")
    return bucket, key


def read_matching(storage: Any, uri: str) -> list[tuple[str, bytes]]:
    """``(uri, content)`` of the object ``uri``, or of every object a ``*`` pattern matches."""
    bucket, key = split(uri)
    if "*" not in key:
        return [(uri, storage.bucket(bucket).blob(key).download_as_bytes())]
    prefix = key.split("*", 1)[0]
    return [(f"gs://{bucket}/{blob.name}", blob.download_as_bytes())
            for blob in storage.list_blobs(bucket, prefix=prefix)
            if fnmatch.fnmatchcase(blob.name, key)]


def write(storage: Any, uri: str, content: bytes, content_type: str) -> None:
    bucket, key = split(uri)
    storage.bucket(bucket).blob(key).upload_from_string(content, content_type=content_type)
