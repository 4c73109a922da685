"""The ``gs://`` store on the GCS emulator: what it writes where, and how it moves big files."""

from __future__ import annotations

import json
import os

from gcs_support import *  # noqa: F403 - the store fixtures


def test_roundtrip_smoke(make_store, gcs, gcs_bucket, tmp_path):
    store = make_store("iris")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5 * 1024 * 1024 + 123))
    ref = store.put_file(big, "models/big")
    assert store.stats.parts_sent >= 2
    out = store.get_file("models/big", tmp_path / "out.bin")
    assert out.read_bytes() == big.read_bytes()
    assert store.stats.ranges_fetched >= 2
    body = json.loads(gcs.bucket(gcs_bucket).blob("iris/refs/models/big/.mldock-ref")
                      .download_as_bytes())
    assert body["sha256"] == ref.sha256
    assert store.list() == ["models/big"]
    leftovers = [b.name for b in gcs.list_blobs(gcs_bucket, prefix="iris/tmp/")]
    assert leftovers == []
