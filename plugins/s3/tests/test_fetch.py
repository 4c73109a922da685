"""Data channels from plain S3 objects: one object, a prefix, re-fetches that skip what is current,
and a whole ``mldock train --no-container`` whose data and model live in the bucket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from mldock.errors import MldockError, NotFoundError
from mldock.testing._common import snapshot
from mldock_s3.fetch import STATE_SUFFIX


@pytest.fixture
def data_prefix(s3, bucket):
    """A fresh prefix holding a small data set: two CSVs in nested folders and a folder marker."""
    prefix = f"data-{uuid.uuid4().hex[:8]}"
    objects = {"train.csv": b"x,y\n1,2\n2,4\n", "extra/more.csv": b"x,y\n3,6\n", "extra/": b""}
    for rel, body in objects.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{rel}", Body=body)
    return prefix


def lines(progress: list[str]) -> str:
    return "\n".join(progress)


def test_fetch_one_object(make_store, bucket, data_prefix, tmp_path):
    store = make_store()
    dest = store.fetch(f"s3://{bucket}/{data_prefix}/train.csv", tmp_path / "ch")
    assert snapshot(dest) == {"train.csv": b"x,y\n1,2\n2,4\n"}
    assert store.stats.bytes_sent == 0  # fetching is not storing


def test_fetch_prefix_mirrors_it_and_refetch_sends_only_changes(make_store, s3, bucket,
                                                                 data_prefix, tmp_path):
    store = make_store()
    uri = f"s3://{bucket}/{data_prefix}"
    dest = tmp_path / "cache" / "ch"
    progress: list[str] = []
    store.fetch(uri, dest, progress=progress.append)
    assert snapshot(dest) == {"train.csv": b"x,y\n1,2\n2,4\n", "extra/more.csv": b"x,y\n3,6\n"}
    assert (tmp_path / "cache" / f"ch{STATE_SUFFIX}").is_file()  # beside the data, not in it
    assert "2 new or changed" in lines(progress)
    inode = (dest / "train.csv").stat().st_ino

    progress.clear()
    store.fetch(uri, dest, progress=progress.append)
    assert "0 new or changed" in lines(progress)
    assert (dest / "train.csv").stat().st_ino == inode  # untouched

    s3.put_object(Bucket=bucket, Key=f"{data_prefix}/extra/more.csv", Body=b"x,y\n3,7\n")
    s3.delete_object(Bucket=bucket, Key=f"{data_prefix}/train.csv")
    s3.put_object(Bucket=bucket, Key=f"{data_prefix}/new.csv", Body=b"x,y\n0,0\n")
    progress.clear()
    store.fetch(uri, dest, progress=progress.append)
    assert "2 new or changed" in lines(progress)
    assert snapshot(dest) == {"extra/more.csv": b"x,y\n3,7\n", "new.csv": b"x,y\n0,0\n"}


def test_fetch_of_a_multipart_object(make_store, s3, bucket, tmp_path):
    """An object uploaded in parts (ETag ``…-N``, not an MD5) is fetched in parallel ranges."""
    from boto3.s3.transfer import TransferConfig

    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(12 << 20))
    key = f"big-{uuid.uuid4().hex[:8]}/big.bin"
    s3.upload_file(str(source), bucket, key,
                   Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
    assert "-" in s3.head_object(Bucket=bucket, Key=key)["ETag"]
    dest = make_store().fetch(f"s3://{bucket}/{key}", tmp_path / "ch")
    assert (dest / "big.bin").read_bytes() == source.read_bytes()


def test_fetch_errors_name_the_uri(make_store, s3, bucket, options, tmp_path):
    store = make_store()
    with pytest.raises(NotFoundError, match="nothing to fetch at s3://"):
        store.fetch(f"s3://{bucket}/no/such/data", tmp_path / "a")
    with pytest.raises(NotFoundError, match="bucket 'no-such-bucket-x1' does not exist"):
        store.fetch("s3://no-such-bucket-x1/data", tmp_path / "b")
    prefix = f"odd-{uuid.uuid4().hex[:8]}"
    s3.put_object(Bucket=bucket, Key=f"{prefix}/a//b.csv", Body=b"1")
    with pytest.raises(MldockError, match="not a safe relative path"):
        store.fetch(f"s3://{bucket}/{prefix}", tmp_path / "c")
    (tmp_path / "file").write_text("x")
    with pytest.raises(MldockError, match="it is a file"):
        store.fetch(f"s3://{bucket}/{prefix}", tmp_path / "file")


# --- through mldock itself ---------------------------------------------------------------------


def mldock(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    result = subprocess.run([sys.executable, "-c", "from mldock.cli.main import main; main()",
                             *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env,
                            check=False)
    assert result.returncode == 0, f"mldock {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def test_train_without_container_reads_data_from_s3_and_stores_the_model_there(
        moto, s3, bucket, tmp_path):
    """The minimal template, trained in-process: [data] train is an s3:// prefix (fetched through
    core's channels into its cache) and [storage] uri an s3:// store (the run's model tree)."""
    mldock("init", "demo", "--template", "minimal", "--no-input", cwd=tmp_path)
    project = tmp_path / "demo"
    prefix = f"demo-{uuid.uuid4().hex[:8]}"
    s3.upload_file(str(project / "data" / "train.csv"), bucket, f"{prefix}/data/train.csv")
    config = (project / "mldock.toml").read_text()
    data_uri = f"s3://{bucket}/{prefix}/data"
    config = config.replace('train = "data/train.csv"', f'train = "{data_uri}"')
    config += (f'\n[storage]\nuri = "s3://{bucket}/{prefix}/store"\n\n'
               f'[storage.s3]\nendpoint_url = "{moto.url}"\n')
    (project / "mldock.toml").write_text(config)

    run_id = mldock("train", "--no-container", "-q", cwd=project).stdout.strip().splitlines()[-1]
    run = json.loads(mldock("runs", "show", run_id, "--json", cwd=project).stdout)
    assert run["status"] == "finished"
    assert run["lineage"]["inputs"]["train"]["uri"] == data_uri
    (model,) = [a for a in run["artifacts"] if a["key"] == f"runs/{run_id}/model"]
    assert (model["store"], model["uri"]) == (f"s3://{bucket}/{prefix}/store", None)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/store/refs/runs/{run_id}/")
    assert [o["Key"] for o in listed["Contents"]] == [
        f"{prefix}/store/refs/runs/{run_id}/model/.mldock-ref"]

    from mldock_s3.config import S3Options
    from mldock_s3.store import S3ArtifactStore

    store = S3ArtifactStore(f"s3://{bucket}/{prefix}/store", S3Options(endpoint_url=moto.url))
    got = Path(store.get_tree(f"runs/{run_id}/model", tmp_path / "model"))
    assert json.loads((got / "mldock-model.json").read_text())["run_id"] == run_id
