"""Data for remote jobs: a local folder uploaded as plain objects that Vertex AI (or any platform
that reads a channel's raw files) can read, e.g. through its ``/gcs/<bucket>/…`` mount.

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

from mldock.cas import TransferProgress, hash_tree, human, manifest_bytes
from mldock.interfaces import ProgressSink, null_progress

if TYPE_CHECKING:  # pragma: no cover
    from mldock_gcp.store import GcsArtifactStore


def stage_folder(store: GcsArtifactStore, folder: Path, digest: str, *,
                 progress: ProgressSink = null_progress) -> str:
    """Upload ``folder`` under ``data/<digest>/`` unless already complete; return its URI."""
    location = store.location
    prefix = location.key("data", digest)
    marker = location.key("staged", f"{digest}.json")
    uri = f"gs://{location.bucket}/{prefix}/"
    action = f"stage data {digest[:12]}"
    with store.guard(action):
        if store.blobs.get_bytes(marker) is not None:
            progress(f"data {digest[:12]} already staged at {uri}")
            return uri
        manifest, _ = hash_tree(folder)
        total = sum(entry["size"] for entry in manifest.values())
        progress(f"staging {len(manifest)} data file(s) ({human(total)}) at {uri}")
        meter = TransferProgress(progress, "uploading", uri, total)
        files = sorted(manifest)
        mover = store.blobs

        def send(rel: str) -> None:
            path = Path(folder).joinpath(*rel.split("/"))
            mover.upload_file(lambda: open(path, "rb"), manifest[rel]["size"],  # noqa: SIM115
                              f"{prefix}/{rel}", meter)

        small = [rel for rel in files if not mover.conn.parallel_upload(manifest[rel]["size"])]
        mover.pool_map(send, small)
        for rel in files:
            if mover.conn.parallel_upload(manifest[rel]["size"]):
                send(rel)
        mover.count(bytes_sent=total)
        mover.put_bytes(marker, manifest_bytes(manifest), content_type="application/json")
    return uri
