"""Data for remote jobs: a local folder uploaded as plain objects SageMaker (or any platform that
reads a channel's raw files) can mount.

Unlike artifacts, staged data is not content-addressed blob by blob: the platform needs the files
under their own names. The folder's tree hash names the prefix (``<prefix>/data/<digest>/``), so the
same data is uploaded once, and a completion marker outside that prefix
(``<prefix>/staged/<digest>.json``, the folder's manifest) is written last: a prefix without its
marker was interrupted and is uploaded again. The marker lives outside the data prefix so the job
never sees it among its input files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mldock.cas import hash_tree, manifest_bytes
from mldock.interfaces import ProgressSink, null_progress

if TYPE_CHECKING:  # pragma: no cover
    from mldock_s3.store import S3ArtifactStore


def stage_folder(store: S3ArtifactStore, folder: Path, digest: str, *,
                 progress: ProgressSink = null_progress) -> str:
    """Upload ``folder`` under ``data/<digest>/`` unless already complete; return its URI."""
    from boto3.s3.transfer import create_transfer_manager

    location = store.location
    prefix = location.key("data", digest)
    marker = location.key("staged", f"{digest}.json")
    uri = f"s3://{location.bucket}/{prefix}/"
    action = f"stage data {digest[:12]}"
    if store.blobs.get_bytes(marker, action=action) is not None:
        progress(f"data {digest[:12]} already staged at {uri}")
        return uri
    manifest, _ = hash_tree(folder)
    total = sum(entry["size"] for entry in manifest.values())
    progress(f"staging {len(manifest)} data file(s) ({total} bytes) at {uri}")
    conn = store.connection
    with store.blobs.errors(action), create_transfer_manager(
            conn.client, conn.transfer_config()) as manager:
        futures = [manager.upload(str(Path(folder) / rel), location.bucket, f"{prefix}/{rel}")
                   for rel in sorted(manifest)]
        for future in futures:
            future.result()
    store.blobs.count(bytes_sent=total)
    store.blobs.put_bytes(marker, manifest_bytes(manifest), content_type="application/json",
                          action=action)
    return uri
