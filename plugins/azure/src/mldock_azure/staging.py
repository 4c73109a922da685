"""Data for remote jobs: a local folder uploaded as plain blobs Azure ML can mount as a
``uri_folder`` input.

Unlike artifacts, staged data is not content-addressed blob by blob: the job needs the files under
their own names. The folder's tree hash names the folder (``<prefix>/data/<digest>/``), so the same
data is uploaded once, and a completion marker outside that folder
(``<prefix>/staged/<digest>.json``, the folder's manifest) is written last: a folder without its
marker was interrupted and is uploaded again. The marker lives outside the data folder so the job
never sees it among its input files. :meth:`BlobArtifactStore.https_url` turns the returned
``az://`` URI into the ``https://<account>.blob.core.windows.net/…`` URL Azure ML takes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from mldock.cas import hash_tree, human, manifest_bytes
from mldock.interfaces import ProgressSink, null_progress

from mldock_azure.transfer import OCTET_STREAM, join_all

if TYPE_CHECKING:  # pragma: no cover
    from mldock_azure.store import BlobArtifactStore


def _upload(store: BlobArtifactStore, path: Path, name: str, size: int) -> None:
    """One file as a block blob: one Put Blob when small, parallel blocks (the SDK's) when big."""
    from azure.storage.blob import ContentSettings

    concurrency = 1 if size < store.options.block_size else store.options.max_concurrency
    with open(path, "rb") as handle:
        store.connection.blob(name).upload_blob(
            handle, length=size, overwrite=True, max_concurrency=concurrency,
            validate_content=size < store.options.block_size,
            content_settings=ContentSettings(content_type=OCTET_STREAM))


def stage_folder(store: BlobArtifactStore, folder: Path, digest: str, *,
                 progress: ProgressSink = null_progress) -> str:
    """Upload ``folder`` under ``data/<digest>/`` unless already complete; return its URI."""
    location = store.location
    prefix = location.key("data", digest)
    marker = location.key("staged", f"{digest}.json")
    uri = location.child("data", digest).uri + "/"
    action = f"stage data {digest[:12]}"
    if store.blobs.get_bytes(marker, action=action) is not None:
        progress(f"data {digest[:12]} already staged at {uri}")
        return uri
    manifest, _ = hash_tree(folder)
    total = sum(entry["size"] for entry in manifest.values())
    progress(f"staging {len(manifest)} data file(s) ({human(total)}) at {uri}")
    block = store.options.block_size
    big = [(rel, e["size"]) for rel, e in manifest.items() if e["size"] >= block]
    small = [(rel, e["size"]) for rel, e in manifest.items() if e["size"] < block]
    with store.blobs.errors(action, f"data/{digest}"):
        for rel, size in big:  # each in parallel blocks
            _upload(store, Path(folder).joinpath(*rel.split("/")), f"{prefix}/{rel}", size)
        with ThreadPoolExecutor(max_workers=max(1, min(store.options.max_concurrency,
                                                       len(small))),
                                thread_name_prefix="mldock-azblob-stage") as pool:
            join_all([pool.submit(_upload, store, Path(folder).joinpath(*rel.split("/")),
                                  f"{prefix}/{rel}", size) for rel, size in small])
    store.blobs.count(bytes_sent=total)
    store.blobs.put_bytes(marker, manifest_bytes(manifest), content_type="application/json",
                          action=action)
    return uri
