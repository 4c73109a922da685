"""{{ cookiecutter.__class_name }}: artifacts in a folder named by a ``{{ cookiecutter.uri_scheme }}://`` URI.

A worked example on :class:`mldock.cas.ContentAddressedStore`, the base class of mldock's own local
and S3 stores. The base owns everything the conformance kit checks: key validation, the stored
format (``blobs/sha256/ab/cdef…`` and ``refs/<key>/.mldock-ref``), deduplication (a blob already
present is never sent), atomic publication (blobs, then the manifest, then the reference), verified
and staged fetches, the model-folder walk (links out of the folder refused), error texts and
progress. A backend implements only the primitives below. To put your own service behind it,
replace each primitive's body with calls to its SDK or API (import the SDK inside this module,
never in ``plugin.py``); for speed, also override ``missing_blobs``, ``put_blobs`` and
``get_blobs`` to work on many blobs at once.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mldock.cas import (
    CHUNK_SIZE,
    REF_NAME,
    BlobDownload,
    BlobMissingError,
    BlobSource,
    ContentAddressedStore,
    StoreStats,
    TransferProgress,
    blob_name,
    copy_hashing,
    ref_name,
)
from mldock.cas.layout import changed
from mldock.errors import UsageError
from mldock.interfaces import HealthCheck

SCHEME = "{{ cookiecutter.uri_scheme }}"


class {{ cookiecutter.__class_name }}(ContentAddressedStore):
    """Artifacts under ``root`` (see the module docstring).

    Args:
        root: the store's folder; created on the first write.
        fsync: flush files to disk before they become visible.
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True):
        self.root = Path(os.path.abspath(os.path.expanduser(os.fspath(root))))
        self.uri = f"{SCHEME}://{self.root.as_posix()}"
        self.fsync = fsync
        self.stats = StoreStats()

    @classmethod
    def from_uri(cls, uri: str, *, base_dir: str | os.PathLike[str] | None = None,
                 options: Any = None) -> {{ cookiecutter.__class_name }}:
        """``{{ cookiecutter.uri_scheme }}:///abs/path`` or ``{{ cookiecutter.uri_scheme }}://rel/path`` (relative to ``base_dir``)."""
        parts = urlsplit(uri)
        if parts.scheme != SCHEME:
            raise UsageError(f"not a {SCHEME}:// URI: {uri!r}")
        path = Path(unquote(parts.netloc + parts.path)).expanduser()
        if not str(path) or str(path) == ".":
            raise UsageError(f"invalid storage URI {uri!r}: no folder given",
                             hint=f"use e.g. '{SCHEME}:///srv/artifacts'")
        if not path.is_absolute():
            path = Path(base_dir if base_dir is not None else Path.cwd()) / path
        return cls(path, fsync=getattr(options, "fsync", True))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    def blob_path(self, digest: str) -> Path:
        """Where blob ``digest`` lives (for tests and tools)."""
        return self.root / blob_name(digest)

    def _ref_path(self, key: str) -> Path:
        return self.root / ref_name(key)

    # --- blob primitives: replace with your service's calls -------------------------------------
    def has_blob(self, digest: str, size: int) -> bool:
        path = self.blob_path(digest)
        return path.is_file() and path.stat().st_size == size

    def put_blob(self, source: BlobSource, meter: TransferProgress) -> None:
        """Upload under a temporary name, check what was sent, then make it visible."""
        with source.open() as handle, self._staged(self.blob_path(source.sha256)) as out:
            digest, size = copy_hashing(handle, out, meter.add)
            if (digest, size) != (source.sha256, source.size):
                raise changed(source.label)  # never publish a blob under a wrong name

    def get_blob(self, download: BlobDownload, meter: TransferProgress) -> None:
        """Stream the blob into ``download.open()``; the base hashes and verifies it."""
        try:
            source = open(self.blob_path(download.sha256), "rb")  # noqa: SIM115
        except FileNotFoundError:
            raise BlobMissingError(download.sha256) from None
        with source, download.open() as out:
            for chunk in iter(lambda: source.read(CHUNK_SIZE), b""):
                out.write(chunk)
                meter.add(len(chunk))

    # --- reference primitives: small objects --------------------------------------------------
    def put_ref(self, key: str, data: bytes) -> None:
        with self._staged(self._ref_path(key)) as out:  # the moment the artifact becomes visible
            out.write(data)

    def get_ref(self, key: str) -> bytes | None:
        try:
            return self._ref_path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def list_refs(self, prefix: str) -> list[str]:
        refs = self.root / "refs"
        return [Path(dirpath).relative_to(refs).as_posix()
                for dirpath, _, files in os.walk(refs) if REF_NAME in files]

    def delete_ref(self, key: str) -> None:
        path = self._ref_path(key)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            path.unlink()
        refs, folder = self.root / "refs", path.parent
        while folder != refs:  # drop folders left empty
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent

    def check(self) -> list[HealthCheck]:
        """For ``mldock doctor``: can this store write where it points?"""
        name = f"storage {SCHEME}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".check."):
                pass
        except OSError as exc:
            return [HealthCheck(name, False, f"{self.root}: {exc.strerror or exc}",
                                "make sure the folder exists and is writable")]
        return [HealthCheck(name, True, str(self.root))]

    # --- helpers of the folder example --------------------------------------------------------
    @contextlib.contextmanager
    def _staged(self, final: Path):
        """A temp file beside ``final``, renamed onto it if the block succeeds, removed if not."""
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".upload.", suffix=".tmp", dir=final.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                yield out
                if self.fsync:
                    out.flush()
                    os.fsync(out.fileno())
            os.replace(tmp, final)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


__all__ = ["{{ cookiecutter.__class_name }}"]
