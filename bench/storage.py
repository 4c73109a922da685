"""Artifact storage: S3 and GCS throughput and deduplication through mldock's stores, beside peers.

Against one moto server started here on 127.0.0.1 (real HTTP; all parties share the machine's
cores with it, so absolute MB/s are moto's, the ratios are the point):

* a 1 GB file up and down: mldock's S3 store (``put_file`` hashes first, ``get_file`` verifies the
  hash) against boto3's TransferManager with its default settings (``s3.upload_file`` /
  ``s3.download_file``, no hashing). Goal: ≥ 1.0× boto3's throughput both ways;
* a tree of 1,000 small files: its first push to S3, then a re-push of the unchanged tree.
  Goal: re-push ≤ 0.05× the first push;
* the same tree into the local store against ``cp -r`` (the floor a local copy cannot beat).

Reading the figures: moto answers every GET, ranged or not, by copying the whole object under a
lock, so a download's cost there grows with the number of requests. boto3's 8 MiB ranges make 128
of them per GB; mldock cuts a file into ``max_concurrency`` ranges, hence its large download ratio
here (on AWS the gain is smaller: fewer requests). Uploads are bound by moto's CPU, and mldock pays
for hashing the file before sending it (≈1 s per GB), which it must do to skip content already
stored.

The same on Google Cloud Storage, against ``gcp-storage-emulator`` (in memory, on 127.0.0.1), with
mldock's ``gs://`` store (``[storage.gcs]`` defaults: 32 MiB chunks, 8 connections) beside
google-cloud-storage's own ``transfer_manager`` with its defaults:

* the 1 GB file up with ``upload_many_from_filenames`` (one resumable upload; the transfer
  manager's parallel ``upload_chunks_concurrently`` uses the XML multipart API, which the emulator
  does not have) and down with ``download_chunks_concurrently`` (32 MiB ranges in 8 processes,
  CRC32C checked). Goal: ≥ 1.0× both ways;
* the 1,000-file tree: first push, then the unchanged re-push. Goal: re-push ≤ 0.05×.

Reading the GCS figures: the emulator is a single-threaded HTTP server that keeps objects as
Python bytes. A ranged GET copies the whole object before slicing it, a resumable chunk re-copies
everything received so far, and ``compose`` concatenates its parts one by one; so parallelism buys
nothing there and every extra request costs a copy. mldock cuts a big file into ``max_concurrency``
parts (fewer, larger requests than 32 MiB ranges), which is also what keeps its request count low
on Google's service, where the parts really do move in parallel.

The big file is written to a temp folder in 1 MiB chunks and deleted after; memory stays bounded
on this side (the servers keep what they are sent). Figures are printed, never asserted.

    uv run python bench/storage.py [--size-mb 1024] [--files 1000] [--rounds 1] [--only s3|gcs]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import peer_venv

BUCKET = "bench"
DUMMY = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
         "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


def moto_server_binary() -> Path:
    """``moto_server`` from this environment (mldock-s3's test extra), else a peer venv."""
    local = Path(sys.executable).parent / "moto_server"
    return local if local.exists() else peer_venv("moto", "moto[server]>=5.0") / "moto_server"


class Moto:
    """A moto server on a free loopback port; :meth:`reset` wipes it between measurements."""

    def __init__(self, log: Path):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([str(moto_server_binary()), "-H", "127.0.0.1", "-p",
                                         str(self.port)], stdout=log.open("wb"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        sys.exit(f"moto_server did not start; see {log}")

    def reset(self, client) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=60):
            pass
        client.create_bucket(Bucket=BUCKET)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def write_random_file(path: Path, size_mb: int) -> None:
    """``size_mb`` MiB of incompressible bytes, 1 MiB at a time."""
    block = os.urandom(1 << 20)
    with path.open("wb") as out:
        for i in range(size_mb):
            out.write(i.to_bytes(8, "little") + block[8:])  # every MiB distinct


def write_tree(root: Path, files: int, size: int) -> Path:
    for i in range(files):
        folder = root / f"part{i % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file{i:04d}.txt").write_bytes(f"{i}\n".encode() + os.urandom(size))
    return root


def timed(call, *args) -> float:
    """Seconds ``call(*args)`` took."""
    start = time.perf_counter()
    call(*args)
    return time.perf_counter() - start


def drop(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


class GcsEmulator:
    """``gcp-storage-emulator`` in memory on a free loopback port; :meth:`reset` wipes it."""

    def __init__(self, log: Path):
        program = Path(sys.executable).parent / "gcp-storage-emulator"
        if not program.exists():
            sys.exit("bench/storage.py --only gcs needs gcp-storage-emulator (mldock-gcp's test"
                     " extra): uv sync")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([str(program), "start", "--host", "127.0.0.1", "--port",
                                         str(self.port), "--in-memory"], stdout=log.open("wb"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{self.url}/", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        sys.exit(f"gcp-storage-emulator did not start; see {log}")

    def reset(self, client) -> None:
        with urllib.request.urlopen(f"{self.url}/wipe", timeout=60):
            pass
        client.create_bucket(BUCKET)

    def stop(self) -> None:
        Moto.stop(self)  # type: ignore[arg-type]  # the same terminate-then-kill


def gcs_round(emulator: GcsEmulator, big: Path, tree: Path, work: Path, round_: int,
              record) -> tuple[int, int]:
    """One round on the emulator: 1 GB up and down (both parties), then the tree twice.
    Returns what the unchanged re-push sent (bytes, lookup requests)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    from google.cloud.storage import transfer_manager
    from mldock_gcp.config import GcsOptions
    from mldock_gcp.store import GcsArtifactStore

    client = storage.Client(project="bench", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": emulator.url})
    options = GcsOptions(endpoint_url=emulator.url)
    parties = ["mldock", "transfer_manager"] if round_ % 2 == 0 else \
        ["transfer_manager", "mldock"]
    for party in parties:
        emulator.reset(client)
        out = work / "down.bin"
        if party == "transfer_manager":
            bucket = client.bucket(BUCKET)
            name = f"tm{round_}/{big.name}"

            def upload(bucket=bucket) -> None:
                (result,) = transfer_manager.upload_many_from_filenames(
                    bucket, [big.name], source_directory=str(big.parent),
                    blob_name_prefix=f"tm{round_}/")
                if isinstance(result, Exception):
                    raise result

            record("gcs transfer_manager up", timed(upload))
            blob = bucket.get_blob(name)
            record("gcs transfer_manager down", timed(
                transfer_manager.download_chunks_concurrently, blob, str(out)))
        else:
            store = GcsArtifactStore(f"gs://{BUCKET}/r{round_}", options)
            store.connection  # noqa: B018 - its client is built untimed, like the peer's
            record("gcs mldock up", timed(store.put_file, big, "big"))
            record("gcs mldock down", timed(store.get_file, "big", out))
        if out.stat().st_size != big.stat().st_size:
            sys.exit(f"{party}: downloaded {out.stat().st_size} bytes of {big.stat().st_size}")
        drop(out)
    emulator.reset(client)
    store = GcsArtifactStore(f"gs://{BUCKET}/tree{round_}", options)
    store.connection  # noqa: B018 - built untimed
    record("gcs tree first push", timed(store.put_tree, tree, "runs/1/model"))
    before = (store.stats.bytes_sent, store.stats.requests_head + store.stats.requests_list)
    record("gcs tree re-push", timed(store.put_tree, tree, "runs/1/model"))
    return (store.stats.bytes_sent - before[0],
            store.stats.requests_head + store.stats.requests_list - before[1])


def gcs_section(big: Path, tree: Path, work: Path, rounds: int) -> None:
    """The GCS figures and ratios, printed."""
    results: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        results.setdefault(name, []).append(seconds)

    os.environ.pop("STORAGE_EMULATOR_HOST", None)
    emulator = GcsEmulator(work / "gcs-emulator.log")
    try:
        for round_ in range(rounds):
            resent, lookups = gcs_round(emulator, big, tree, work, round_, record)
    finally:
        emulator.stop()
    med = {name: statistics.median(values) for name, values in results.items()}
    size, mb = big.stat().st_size, 1e6
    print(f"\nGCS: gcp-storage-emulator {emulator.url}; {rounds} round(s), medians\n")
    print(f"{'':<22}{'upload MB/s':>12}{'download MB/s':>15}")
    for party in ("mldock", "transfer_manager"):
        print(f"{party:<22}{size / med[f'gcs {party} up'] / mb:>12.1f}"
              f"{size / med[f'gcs {party} down'] / mb:>15.1f}")
    print(f"\n{'':<22}{'seconds':>12}")
    for name in ("gcs tree first push", "gcs tree re-push"):
        print(f"{name:<22}{med[name]:>12.3f}")
    up = med["gcs transfer_manager up"] / med["gcs mldock up"]
    down = med["gcs transfer_manager down"] / med["gcs mldock down"]
    print(f"\nmldock / transfer_manager upload    = {up:.2f} (goal >= 1.0)")
    print(f"mldock / transfer_manager download  = {down:.2f} (goal >= 1.0)")
    print(f"re-push / first push (GCS)          = "
          f"{med['gcs tree re-push'] / med['gcs tree first push']:.3f} (goal <= 0.05;"
          f" re-push sent {resent} bytes, {lookups} lookup request(s))")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="big file size (MiB)")
    parser.add_argument("--files", type=int, default=1000, help="small files in the tree")
    parser.add_argument("--file-kb", type=int, default=4, help="size of each small file (KiB)")
    parser.add_argument("--rounds", type=int, default=1, help="repetitions (medians reported)")
    parser.add_argument("--only", choices=("s3", "gcs"), help="one store's section only")
    args = parser.parse_args()
    if args.only == "gcs":
        work = Path(tempfile.mkdtemp(prefix="mldock-bench-storage-"))
        try:
            big = work / "big.bin"
            write_random_file(big, args.size_mb)
            tree = write_tree(work / "tree", args.files, args.file_kb << 10)
            gcs_section(big, tree, work, args.rounds)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    os.environ.update(DUMMY)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(name, None)

    try:
        import boto3
        from mldock_s3.config import S3Options
        from mldock_s3.store import S3ArtifactStore
    except ImportError as exc:
        sys.exit(f"bench/storage.py needs mldock-s3 ({exc}): uv pip install -e plugins/s3")
    from mldock.local.storage import LocalArtifactStore

    work = Path(tempfile.mkdtemp(prefix="mldock-bench-storage-"))
    moto = Moto(work / "moto.log")
    try:
        client = boto3.client("s3", endpoint_url=moto.url)
        options = S3Options(endpoint_url=moto.url)
        big = work / "big.bin"
        write_random_file(big, args.size_mb)
        size = big.stat().st_size
        tree = write_tree(work / "tree", args.files, args.file_kb << 10)
        tree_bytes = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
        results: dict[str, list[float]] = {}

        def record(name: str, seconds: float) -> None:
            results.setdefault(name, []).append(seconds)

        for round_ in range(args.rounds):
            # --- 1 GB up and down; each party on a freshly reset server, order alternating
            parties = ["mldock", "boto3"] if round_ % 2 == 0 else ["boto3", "mldock"]
            for party in parties:
                moto.reset(client)
                out = work / "down.bin"
                if party == "boto3":
                    record("boto3 up", timed(client.upload_file, str(big), BUCKET, "big"))
                    record("boto3 down", timed(client.download_file, BUCKET, "big", str(out)))
                else:
                    store = S3ArtifactStore(f"s3://{BUCKET}/r{round_}", options)
                    store.connection  # noqa: B018 - its client is built untimed, like boto3's
                    record("mldock up", timed(store.put_file, big, "big"))
                    record("mldock down", timed(store.get_file, "big", out))
                drop(out)

            # --- small-file tree: first push, unchanged re-push
            moto.reset(client)
            store = S3ArtifactStore(f"s3://{BUCKET}/tree{round_}", options)
            store.connection  # noqa: B018 - built untimed
            record("tree first push", timed(store.put_tree, tree, "runs/1/model"))
            before = (store.stats.bytes_sent,
                      store.stats.requests_head + store.stats.requests_list)
            record("tree re-push", timed(store.put_tree, tree, "runs/1/model"))
            resent = store.stats.bytes_sent - before[0]
            lookups = store.stats.requests_head + store.stats.requests_list - before[1]

            # --- local store against cp -r
            local_root, copy = work / "local-store", work / "cp-copy"
            record("cp -r", timed(subprocess.run, ["cp", "-r", str(tree), str(copy)]))
            local = LocalArtifactStore(local_root)
            record("local first push", timed(local.put_tree, tree, "runs/1/model"))
            record("local re-push", timed(local.put_tree, tree, "runs/1/model"))
            drop(local_root)
            drop(copy)

        med = {name: statistics.median(values) for name, values in results.items()}
        mb = 1e6
        print(f"big file: {size / mb:.0f} MB; tree: {args.files} files, {tree_bytes / mb:.1f} MB;"
              f" moto {moto.url}; {args.rounds} round(s), medians\n")
        print(f"{'':<22}{'upload MB/s':>12}{'download MB/s':>15}")
        for party in ("mldock", "boto3"):
            print(f"{party + ' S3':<22}{size / med[party + ' up'] / mb:>12.1f}"
                  f"{size / med[party + ' down'] / mb:>15.1f}")
        print(f"\n{'':<22}{'seconds':>12}")
        for name in ("tree first push", "tree re-push", "local first push", "local re-push",
                     "cp -r"):
            print(f"{name:<22}{med[name]:>12.3f}")
        up = med["boto3 up"] / med["mldock up"]
        down = med["boto3 down"] / med["mldock down"]
        print(f"\nmldock / boto3 upload throughput    = {up:.2f} (goal >= 1.0)")
        print(f"mldock / boto3 download throughput  = {down:.2f} (goal >= 1.0)")
        print(f"re-push / first push (S3)           = "
              f"{med['tree re-push'] / med['tree first push']:.3f} (goal <= 0.05;"
              f" re-push sent {resent} bytes, {lookups} lookup request(s))")
        print(f"local store push / cp -r            = {med['local first push'] / med['cp -r']:.2f}"
              " (cp -r is the floor)")
        print(f"local re-push / local first push    = "
              f"{med['local re-push'] / med['local first push']:.3f}")
        if args.only is None:
            gcs_section(big, tree, work, args.rounds)
    finally:
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
