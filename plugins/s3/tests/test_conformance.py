"""mldock's conformance kit against the real S3 API (moto over HTTP on 127.0.0.1).

The store is built through the ``s3`` record mldock registers (its factory, from ``[storage] uri``
and ``[storage.s3]``), and the contract's capability flags come from that record's capabilities.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import pytest
from mldock.records import FactoryContext
from mldock.testing import ArtifactStoreContract, RegistrationContract, registered_record


class TestS3Store(ArtifactStoreContract):
    """Every contract test, every capability: 5 MiB parts so multipart paths run too."""

    record = registered_record("storage", "s3")
    overrides: ClassVar[dict[str, Any]] = {}

    @pytest.fixture
    def store(self, bucket, options, tmp_path):
        """A fresh prefix per test, built by the record's factory as ``mldock`` builds it."""
        from mldock_s3.config import S3Options
        from mldock_s3.store import S3ArtifactStore

        opts = S3Options(**{**options.model_dump(), **self.overrides})
        uri = f"s3://{bucket}/t-{uuid.uuid4().hex[:12]}"
        store = self.record.build(FactoryContext(uri=uri, options=opts, project_dir=tmp_path))
        assert isinstance(store, S3ArtifactStore)
        return store

    def corrupt(self, store, key: str) -> None:
        """Overwrite the blob the reference names, behind the store's back (same length)."""
        ref = store.stat(key)
        client = store.connection.client
        blob = store.blob_key(ref.sha256)
        data = client.get_object(Bucket=store.location.bucket, Key=blob)["Body"].read()
        client.put_object(Bucket=store.location.bucket, Key=blob,
                          Body=bytes([data[0] ^ 0xFF]) + data[1:])


class TestS3StorePathStyle(TestS3Store):
    """The same contract with path-style addressing and the default part sizes, as MinIO and
    Ceph users configure it (``addressing_style = "path"``)."""

    overrides: ClassVar[dict[str, Any]] = {
        "addressing_style": "path", "multipart_threshold_mb": 64, "multipart_chunk_mb": 64,
        "max_concurrency": 8}


class TestRegistration(RegistrationContract):
    entry_point_name = "s3"
    distribution = "mldock-s3"
    expected: ClassVar[dict[str, list[str]]] = {"storage": ["s3"]}
