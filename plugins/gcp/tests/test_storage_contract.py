"""mldock's conformance kit against the GCS emulator (real JSON API over HTTP on 127.0.0.1).

The store is built through the ``gcs`` record mldock registers (its factory, from ``[storage] uri``
and ``[storage.gcs]``), and the contract's capability flags come from that record's capabilities.
Three configurations: 1 MiB chunks (a file of 1 MiB or more is streamed in a resumable upload and
fetched in parallel ranges), the same with parallel composite uploads from 2 MiB, and the defaults
(every file of the contract in one request).
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import pytest
from gcs_support import *  # noqa: F403 - the store fixtures
from mldock.records import FactoryContext
from mldock.testing import ArtifactStoreContract, RegistrationContract, registered_record


class TestGcsStore(ArtifactStoreContract):
    """Every contract test, every capability, with small chunks so streamed and ranged paths
    run."""

    record = registered_record("storage", "gcs")
    overrides: ClassVar[dict[str, Any]] = {}

    @pytest.fixture
    def store(self, gcs_bucket, gcs_options, tmp_path):
        """A fresh prefix per test, built by the record's factory as ``mldock`` builds it."""
        from mldock_gcp.config import GcsOptions
        from mldock_gcp.store import GcsArtifactStore

        options = GcsOptions(**{**gcs_options.model_dump(), **self.overrides})
        uri = f"gs://{gcs_bucket}/t-{uuid.uuid4().hex[:12]}"
        store = self.record.build(FactoryContext(uri=uri, options=options, project_dir=tmp_path))
        assert isinstance(store, GcsArtifactStore)
        return store

    def corrupt(self, store, key: str) -> None:
        """Overwrite the blob the reference names, behind the store's back (same length)."""
        blob = store.connection.bucket(store.location.bucket).blob(
            store.blob_key(store.stat(key).sha256))
        data = blob.download_as_bytes()
        blob.upload_from_string(bytes([data[0] ^ 0xFF]) + data[1:])


class TestGcsStoreParallelUploads(TestGcsStore):
    """The same contract with parallel composite uploads from 2 MiB."""

    overrides: ClassVar[dict[str, Any]] = {"parallel_upload_mb": 2}


class TestGcsStoreDefaults(TestGcsStore):
    """The same contract with the default chunk size and concurrency."""

    overrides: ClassVar[dict[str, Any]] = {"chunk_mb": 32, "max_concurrency": 8}


class TestRegistration(RegistrationContract):
    entry_point_name = "gcp"
    distribution = "mldock-gcp"
    expected: ClassVar[dict[str, list[str]]] = {"storage": ["gcs"]}
