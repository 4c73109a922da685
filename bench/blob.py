"""Azure Blob Storage: mldock's ``az://`` store beside azure-storage-blob's own transfers.

Against one Azurite started here on 127.0.0.1 (real HTTP; Azurite, this process and the SDK share
the machine's cores, so absolute MB/s are Azurite's, the ratios are the point):

* one big file up and down: mldock's store (``put_file`` hashes the file first and sends blocks
  of ``block_mb`` with their MD5, ``max_concurrency`` at a time; ``get_file`` fetches ranges in
  parallel and verifies the SHA-256) against ``BlobClient.upload_blob`` / ``download_blob`` with
  the SDK's defaults (``max_concurrency=1``, 4 MiB blocks above 64 MiB, 32 MiB first GET then
  4 MiB chunks; no hashing). Goal: ≥ 1.0× the SDK's throughput both ways;
* a tree of many small files: its first push, then a re-push of the unchanged tree.
  Goal: re-push ≤ 0.05× the first push.

Figures are printed, never asserted. The account key used is Azurite's public development key.

    uv run python bench/blob.py [--size-mb 512] [--files 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from mldock.testing.azurite import start_azurite
from mldock.testing.processes import ProcessSet

VARIABLE = "MLDOCK_BENCH_AZURITE_CONNECTION"


def write_random_file(path: Path, size_mb: int) -> None:
    with open(path, "wb") as handle:
        for _ in range(size_mb):
            handle.write(os.urandom(1 << 20))


def write_tree(root: Path, files: int, size: int) -> Path:
    for i in range(files):
        folder = root / f"d{i % 20}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:04d}.bin").write_bytes(os.urandom(size))
    return root


def timed(call, *args, **kwargs) -> float:
    started = time.perf_counter()
    call(*args, **kwargs)
    return time.perf_counter() - started


def sdk_upload(service, container: str, name: str, path: Path) -> None:
    with open(path, "rb") as handle:
        service.get_blob_client(container, name).upload_blob(handle, overwrite=True)


def sdk_download(service, container: str, name: str, dest: Path) -> None:
    with open(dest, "wb") as handle:
        service.get_blob_client(container, name).download_blob().readinto(handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from azure.storage.blob import BlobServiceClient
    from mldock_azure.config import BlobOptions
    from mldock_azure.store import BlobArtifactStore

    with tempfile.TemporaryDirectory(prefix="mldock-bench-blob-") as scratch:
        work = Path(scratch)
        processes = ProcessSet(work / "logs")
        try:
            azurite = start_azurite(processes, work / "azurite")
            os.environ[VARIABLE] = azurite.connection_string
            service = BlobServiceClient.from_connection_string(azurite.connection_string)
            options = BlobOptions(connection_string=f"env:{VARIABLE}")
            big = work / "big.bin"
            write_random_file(big, args.size_mb)
            mb = big.stat().st_size / (1 << 20)
            times: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                container = f"bench-{uuid.uuid4().hex[:12]}"
                service.create_container(container)
                store = BlobArtifactStore(f"az://{container}/mldock", options)
                times.setdefault("sdk upload", []).append(
                    timed(sdk_upload, service, container, "sdk/big.bin", big))
                times.setdefault("sdk download", []).append(
                    timed(sdk_download, service, container, "sdk/big.bin", work / "sdk.out"))
                times.setdefault("mldock upload", []).append(
                    timed(store.put_file, big, "big"))
                times.setdefault("mldock download", []).append(
                    timed(store.get_file, "big", work / "mldock.out"))
                assert store.stats.bytes_sent == big.stat().st_size
                service.delete_container(container)
                for leftover in ("sdk.out", "mldock.out"):
                    (work / leftover).unlink(missing_ok=True)
            print(f"one {mb:.0f} MiB file on Azurite, median of {args.rounds} round(s):")
            for name, values in times.items():
                seconds = statistics.median(values)
                print(f"  {name:16s} {seconds:7.2f} s  {mb / seconds:7.1f} MiB/s")
            for way in ("upload", "download"):
                ratio = statistics.median(times[f"sdk {way}"]) / statistics.median(
                    times[f"mldock {way}"])
                print(f"  mldock/sdk {way} throughput: {ratio:.2f}x (goal >= 1.0x)")
            big.unlink()

            tree = write_tree(work / "tree", args.files, 4096)
            container = f"bench-{uuid.uuid4().hex[:12]}"
            service.create_container(container)
            first = BlobArtifactStore(f"az://{container}/tree", options)
            push = timed(first.put_tree, tree, "t")
            again = BlobArtifactStore(f"az://{container}/tree", options)
            repush = timed(again.put_tree, tree, "t")
            print(f"tree of {args.files} files of 4 KiB: first push {push:.2f} s, unchanged"
                  f" re-push {repush:.3f} s ({repush / push:.3f}x, goal <= 0.05x;"
                  f" {again.stats.bytes_sent} bytes and {again.stats.requests_head} lookup(s))")
            service.delete_container(container)
        finally:
            processes.stop_all()


if __name__ == "__main__":
    sys.exit(main())
