"""Staging local data for remote jobs: plain objects under ``data/<digest>/``, uploaded once, the
completion marker outside the prefix the job reads."""

from __future__ import annotations

import uuid

from mldock.cas import hash_tree


def _listing(s3, bucket: str, prefix: str) -> dict[str, bytes]:
    found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"][len(prefix):]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for o in found}


def test_stage_uploads_plain_files_once(make_store, s3, bucket, tmp_path):
    folder = tmp_path / "train"
    (folder / "nested").mkdir(parents=True)
    (folder / "iris.csv").write_bytes(b"a,b\n1,2\n")
    (folder / "nested" / "more.csv").write_bytes(b"a,b\n3,4\n")
    digest = hash_tree(folder)[1]
    store = make_store(f"stage-{uuid.uuid4().hex[:8]}")
    progress: list[str] = []

    uri = store.stage_data(folder, digest, progress=progress.append)
    root = store.location.key("data", digest) + "/"
    assert uri == f"s3://{bucket}/{root}"
    # exactly the files, under their own names: what a SageMaker S3Prefix channel downloads
    assert _listing(s3, bucket, root) == {"iris.csv": b"a,b\n1,2\n",
                                          "nested/more.csv": b"a,b\n3,4\n"}
    marker = store.location.key("staged", f"{digest}.json")
    assert s3.head_object(Bucket=bucket, Key=marker)["ContentLength"] > 0

    sent = store.stats.bytes_sent
    assert store.stage_data(folder, digest, progress=progress.append) == uri
    assert store.stats.bytes_sent == sent  # nothing uploaded twice
    assert "already staged" in progress[-1]


def test_interrupted_stage_is_redone(make_store, s3, bucket, tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "iris.csv").write_bytes(b"a\n1\n")
    digest = hash_tree(folder)[1]
    store = make_store(f"stage-{uuid.uuid4().hex[:8]}")
    root = store.location.key("data", digest) + "/"
    s3.put_object(Bucket=bucket, Key=root + "iris.csv", Body=b"partial")  # no marker: incomplete
    store.stage_data(folder, digest)
    assert _listing(s3, bucket, root) == {"iris.csv": b"a\n1\n"}
