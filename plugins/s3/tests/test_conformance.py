"""mldock's conformance kit against the real S3 API (moto over HTTP on 127.0.0.1)."""

from __future__ import annotations

from typing import ClassVar

import pytest
from mldock.testing import ArtifactStoreContract, RegistrationContract


class TestS3Store(ArtifactStoreContract):
    """Every contract test, every capability: 5 MiB parts so multipart paths run too."""

    backend_name = "s3"
    supports_delete = True
    supports_list = True
    supports_concurrency = True
    supports_content_addressing = True
    supports_modes = True

    @pytest.fixture
    def store(self, make_store):
        return make_store()

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

    @pytest.fixture
    def store(self, make_store):
        return make_store(addressing_style="path", multipart_threshold_mb=64,
                          multipart_chunk_mb=64, max_concurrency=8)


class TestRegistration(RegistrationContract):
    entry_point_name = "s3"
    distribution = "mldock-s3"
    expected: ClassVar[dict[str, list[str]]] = {"storage": ["s3"]}
