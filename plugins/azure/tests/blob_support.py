"""Fixtures of the ``az://`` store tests, on the harness's Azurite (Blob Storage on loopback).

Test modules take them with ``from blob_support import *`` (the folder is on ``sys.path``, see
``conftest.py``). Every test gets its own uniquely named container, removed afterwards, and reaches
Azurite through the public development account's connection string, named the way users name
theirs: ``connection_string = "env:MLDOCK_TEST_AZURITE_CONNECTION"``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

CONNECTION_VARIABLE = "MLDOCK_TEST_AZURITE_CONNECTION"


@pytest.fixture
def blob_env(azurite: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The connection string in :data:`CONNECTION_VARIABLE` (as a user would export it)."""
    monkeypatch.setenv(CONNECTION_VARIABLE, azurite.connection_string)
    return CONNECTION_VARIABLE


@pytest.fixture
def blob_service(azurite: Any) -> Any:
    """A plain azure-storage-blob client on Azurite, to look at what the store really wrote."""
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(azurite.connection_string)


@pytest.fixture
def container(blob_service: Any) -> Iterator[str]:
    """A fresh container for the test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:16]}"
    blob_service.create_container(name)
    yield name
    blob_service.delete_container(name)


@pytest.fixture
def blob_options(blob_env: str) -> Any:
    """Options on Azurite with 1 MiB blocks, so block uploads and ranged downloads run on
    small files."""
    from mldock_azure.config import BlobOptions

    return BlobOptions(connection_string=f"env:{blob_env}", max_concurrency=4, block_mb=1)


@pytest.fixture
def make_store(container: str, blob_options: Any) -> Callable[..., Any]:
    """``make_store(prefix=None, **option_overrides)``: a store under a fresh prefix."""
    from mldock_azure.config import BlobOptions
    from mldock_azure.store import BlobArtifactStore

    def make(prefix: str | None = None, **overrides: Any) -> BlobArtifactStore:
        prefix = prefix or f"p-{uuid.uuid4().hex[:12]}"
        options = BlobOptions(**{**blob_options.model_dump(), **overrides}) if overrides \
            else blob_options
        return BlobArtifactStore(f"az://{container}/{prefix}", options)

    return make


def container_client(store: Any) -> Any:
    """The store's own container client (the same account and credentials)."""
    return store.connection.container


__all__ = ["CONNECTION_VARIABLE", "blob_env", "blob_options", "blob_service", "container",
           "container_client", "make_store"]
