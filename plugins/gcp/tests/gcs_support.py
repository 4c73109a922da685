"""Fixtures of the ``gs://`` store tests, on the harness's GCS emulator (loopback).

Test modules take them with ``from gcs_support import *`` (the folder is on ``sys.path``, see
``conftest.py``). Every test gets its own uniquely named bucket on the session's emulator and
reaches it the way a user reaches one: ``[storage.gcs] endpoint_url`` (a plain-HTTP endpoint, so
requests go without credentials).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

__all__ = ["gcs", "gcs_bucket", "gcs_options", "make_store"]


@pytest.fixture
def gcs(gcs_emulator: str) -> Any:
    """A plain google-cloud-storage client on the emulator, to look at what the store wrote."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project="test", credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": gcs_emulator})


@pytest.fixture
def gcs_bucket(make_gcs_bucket: Callable[[str], str]) -> str:
    """A new bucket for the test."""
    return make_gcs_bucket("mldock-store")


@pytest.fixture
def gcs_options(gcs_emulator: str) -> Any:
    """Options on the emulator with 1 MiB chunks, so parallel parts and ranges run on small
    files."""
    from mldock_gcp.config import GcsOptions

    return GcsOptions(endpoint_url=gcs_emulator, max_concurrency=4, chunk_mb=1)


@pytest.fixture
def make_store(gcs_bucket: str, gcs_options: Any) -> Callable[..., Any]:
    """``make_store(prefix=None, **option_overrides)``: a store under a fresh prefix."""
    from mldock_gcp.config import GcsOptions
    from mldock_gcp.store import GcsArtifactStore

    def make(prefix: str | None = None, **overrides: Any) -> GcsArtifactStore:
        prefix = prefix or f"p-{uuid.uuid4().hex[:12]}"
        options = GcsOptions(**{**gcs_options.model_dump(), **overrides}) if overrides \
            else gcs_options
        return GcsArtifactStore(f"gs://{gcs_bucket}/{prefix}", options)

    return make
