"""Artifact storage: where models, data and run outputs live (local, S3, Azure Blob, GCS)."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from mldock.interfaces.common import HealthCheck, ProgressSink, null_progress


@dataclass(frozen=True)
class ArtifactRef:
    """A stored artifact: a single file or a directory tree (then ``sha256`` hashes its manifest).

    Attributes:
        key: the path of the artifact inside the store, ``/``-separated, no leading slash.
        uri: the full URI (``file:///…``, ``s3://bucket/prefix/key``).
        sha256: hex digest of the file's bytes, or of the tree's manifest.
        size: bytes (for a tree, the sum of its files).
        kind: ``"file"`` or ``"tree"``.
    """

    key: str
    uri: str
    sha256: str
    size: int
    kind: str = "file"


class ArtifactStore(ABC):
    """Put and get files and directory trees under keys.

    Contract (checked by :class:`mldock.testing.ArtifactStoreContract`):

    * writes are atomic: a reader sees the whole artifact or nothing;
    * a tree becomes visible only once all its files are stored (its manifest is written last);
    * reads verify content hashes and raise on a mismatch;
    * keys are ``/``-separated relative paths; ``..`` and absolute keys are rejected.

    Capabilities: ``content-addressed`` (unchanged content is never sent twice), ``atomic``,
    ``delete``, ``list``.
    """

    #: the URI of the store's root, e.g. ``file:///home/me/proj/.mldock/artifacts``
    uri: str

    @abstractmethod
    def put_file(self, source: Path, key: str, *,
                 progress: ProgressSink = null_progress) -> ArtifactRef:
        """Store one file under ``key`` (replacing what was there) and return its reference."""

    @abstractmethod
    def get_file(self, key: str, dest: Path, *, progress: ProgressSink = null_progress) -> Path:
        """Fetch the file stored under ``key`` into ``dest``, verifying its hash."""

    @abstractmethod
    def put_tree(self, source: Path, key: str, *,
                 progress: ProgressSink = null_progress) -> ArtifactRef:
        """Store a directory tree under ``key``; visible to readers only when complete."""

    @abstractmethod
    def get_tree(self, key: str, dest: Path, *, progress: ProgressSink = null_progress) -> Path:
        """Fetch the tree stored under ``key`` into the folder ``dest``, verifying every file."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether a complete file or tree is stored under ``key``."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Keys of complete artifacts under ``prefix``, sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the artifact under ``key``; deleting a missing key is not an error."""

    def fetch(self, uri: str, dest: Path, *, progress: ProgressSink = null_progress) -> Path:
        """Download a plain object or prefix (not a stored artifact) at ``uri`` into ``dest``.

        Used for input data channels given as URIs in ``[data]``. ``dest`` is a folder; a single
        object lands inside it under its own name. Stores that cannot do this raise
        ``NotImplementedError``.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot fetch data URIs")

    def stage_data(self, folder: Path, digest: str, *,
                   progress: ProgressSink = null_progress) -> str:
        """Upload a data folder as plain objects (not content-addressed) and return its URI.

        For platforms that read a channel's raw files from storage (SageMaker, Vertex AI, Azure
        ML). ``digest`` is the folder's content hash: stores put it under ``data/<digest>/`` and
        skip the upload when that prefix is complete already. Local-only stores raise
        ``NotImplementedError``.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot stage data for remote jobs")

    def uri_for(self, key: str) -> str:
        """The full URI of ``key`` in this store."""
        return f"{self.uri.rstrip('/')}/{key}"

    def check(self) -> builtins.list[HealthCheck]:  # ``list`` is a method here
        """Health checks for ``mldock doctor`` (reachability, credentials). Default: none."""
        return []
