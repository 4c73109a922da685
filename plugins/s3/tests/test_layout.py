"""What the s3 store keeps in the bucket did not change with mldock.cas: a prefix holding the
objects of a store written before it (:data:`mldock.testing.storage.GOLDEN_OBJECTS`, commit
46c859c's local store, object by object) reads back, and the same content writes the same keys
and bytes. Against S3 on moto."""

from __future__ import annotations

import re
from pathlib import Path

from mldock.testing._common import snapshot
from mldock.testing.storage import GOLDEN_OBJECTS, GOLDEN_TREE, write_golden_tree

STORED_AT = re.compile(rb'"stored_at": [0-9.e+-]+')


def objects_under(s3, bucket: str, prefix: str) -> dict[str, bytes]:
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            found[obj["Key"][len(prefix) + 1:]] = STORED_AT.sub(b'"stored_at": T', body)
    return found


def test_writes_the_keys_and_bytes_the_old_code_wrote(make_store, s3, tmp_path):
    store = make_store()
    store.put_tree(write_golden_tree(tmp_path / "tree"), "models/iris")
    (tmp_path / "f").write_bytes(b"hello\n")
    store.put_file(tmp_path / "f", "notes/readme")
    expected = {name: STORED_AT.sub(b'"stored_at": T', data)
                for name, data in GOLDEN_OBJECTS.items()}
    assert objects_under(s3, store.location.bucket, store.location.prefix) == expected


def test_reads_a_prefix_written_before(make_store, s3, tmp_path):
    store = make_store()
    for name, data in GOLDEN_OBJECTS.items():
        s3.put_object(Bucket=store.location.bucket, Key=store.location.key(name), Body=data)
    assert store.list() == ["models/iris", "notes/readme"]
    out = Path(store.get_tree("models/iris", tmp_path / "out"))
    assert snapshot(out) == snapshot(write_golden_tree(tmp_path / "expected"))
    assert {rel: (out / rel).stat().st_mode & 0o777 for rel in GOLDEN_TREE} == {
        rel: mode for rel, (_, mode) in GOLDEN_TREE.items()}
    assert Path(store.get_file("notes/readme", tmp_path / "r")).read_bytes() == b"hello\n"
    store.put_tree(tmp_path / "expected", "models/iris")  # already there: nothing sent
    assert store.stats.bytes_sent == 0
