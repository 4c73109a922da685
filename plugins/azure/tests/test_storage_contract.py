"""mldock's storage conformance kit against the real Blob API (Azurite on 127.0.0.1).

The store is built through the ``azblob`` record mldock-azure registers (its factory, from
``[storage] uri`` and ``[storage.azblob]``), and the contract's capability flags come from that
record's capabilities. Azurite passes every test: nothing is marked as an emulator limit.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import pytest
from blob_support import *  # noqa: F403 - the store fixtures
from mldock.records import FactoryContext
from mldock.testing import ArtifactStoreContract, registered_record


class TestBlobStore(ArtifactStoreContract):
    """Every contract test, every capability: 1 MiB blocks so block uploads and ranged
    downloads run too."""

    record = registered_record("storage", "azblob")
    overrides: ClassVar[dict[str, Any]] = {}

    @pytest.fixture
    def store(self, container, blob_options, tmp_path):
        """A fresh prefix per test, built by the record's factory as ``mldock`` builds it."""
        from mldock_azure.config import BlobOptions
        from mldock_azure.store import BlobArtifactStore

        options = BlobOptions(**{**blob_options.model_dump(), **self.overrides})
        uri = f"az://{container}/t-{uuid.uuid4().hex[:12]}"
        store = self.record.build(FactoryContext(uri=uri, options=options, project_dir=tmp_path))
        assert isinstance(store, BlobArtifactStore)
        return store

    def corrupt(self, store, key: str) -> None:
        """Overwrite the blob the reference names, behind the store's back (same length, and
        the Content-MD5 Azure keeps updated with it: only the SHA-256 can tell)."""
        ref = store.stat(key)
        client = store.connection.blob(store.blob_key(ref.sha256))
        data = client.download_blob().readall()
        client.upload_blob(bytes([data[0] ^ 0xFF]) + data[1:], overwrite=True)


class TestBlobStoreDefaults(TestBlobStore):
    """The same contract with the default block size and concurrency, as users run it."""

    overrides: ClassVar[dict[str, Any]] = {"block_mb": 8, "max_concurrency": 8}
