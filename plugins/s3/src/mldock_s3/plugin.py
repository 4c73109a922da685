"""Entry point ``s3`` (group ``mldock``): registers the ``s3://`` artifact store.

Imports only mldock and the standard library: this module is loaded by every ``mldock`` command,
``--help`` included, and boto3 costs ~0.15 s to import. The factory imports it when a command
actually needs the store.
"""

from __future__ import annotations

from typing import Any

from mldock.markers import hookimpl
from mldock.records import FactoryContext, StorageRecord

MLDOCK_PLUGIN_API = 1  # the mldock plugin API this module is built for


EXAMPLE = """\
# Artifacts in S3 or an S3-compatible store. Needs: pip install mldock-s3
[storage]
uri = "s3://<bucket>/{project}"

[storage.s3]
region = "eu-west-1"
# endpoint_url = "http://127.0.0.1:9000"   # MinIO, Ceph, R2: the store's endpoint
# addressing_style = "path"                # what most self-hosted stores want
"""
"""What ``mldock config example s3`` prints."""

def make_store(context: FactoryContext) -> Any:
    """Build the store for ``[storage] uri`` (or a data channel's URI) with ``[storage.s3]``."""
    from mldock_s3.store import S3ArtifactStore

    return S3ArtifactStore(context.uri or "", context.options)


@hookimpl
def mldock_storages() -> list[StorageRecord]:
    return [StorageRecord(
        name="s3", summary="AWS S3 and S3-compatible stores (MinIO, Ceph, R2): content-addressed,"
        " atomic", schemes=("s3",), factory=make_store, config_model="mldock_s3.config:S3Options",
        capabilities=frozenset({"content-addressed", "atomic", "delete", "list"}),
        example=EXAMPLE)]
