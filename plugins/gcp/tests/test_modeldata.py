"""Models staged for Vertex AI: a local model folder copied, file by file, to a gs:// folder on
the GCS emulator and read back; a model trained on Vertex used where it is."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid

import pytest
from mldock.errors import MldockError, NotFoundError, UsageError
from mldock_gcp.clients import VertexClients
from mldock_gcp.config import VertexOptions
from mldock_gcp.modeldata import (
    SHA_METADATA,
    artifact_uri,
    local_folder,
    split_uri,
    storage_client,
)


@pytest.fixture
def clients(gcs_emulator, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    return VertexClients(VertexOptions(project="mldock-test-project"))


@pytest.fixture
def bucket(clients):
    """A bucket of this test on the emulator."""
    name = f"mldock-model-{uuid.uuid4().hex[:10]}"
    storage_client(clients).create_bucket(name)
    return name


@pytest.fixture
def model_dir(tmp_path):
    """A trained model folder as the runtime leaves it (files + mldock-model.json)."""
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.joblib").write_bytes(b"\x80\x04weights" * 100_000)
    (folder / "sub" / "labels.txt").write_text("setosa\nversicolor\nvirginica\n")
    files = {rel: hashlib.sha256((folder / rel).read_bytes()).hexdigest()
             for rel in ("model.joblib", "sub/labels.txt")}
    (folder / "mldock-model.json").write_text(json.dumps(
        {"format": 1, "predictor": "iris.predict:Predictor", "run_id": "run1",
         "created_at": time.time(), "files": files}))
    return folder


def stored(clients, bucket: str, prefix: str) -> dict[str, tuple[bytes, str]]:
    """Every object under ``prefix``: relative name -> (content, its sha256 metadata)."""
    found = {}
    for blob in storage_client(clients).list_blobs(bucket, prefix=prefix + "/"):
        found[blob.name[len(prefix) + 1:]] = (blob.download_as_bytes(),
                                              (blob.metadata or {}).get(SHA_METADATA))
    return found


def test_a_local_model_is_copied_under_the_staging_folder(clients, bucket, model_dir):
    lines: list[str] = []
    uri = artifact_uri(clients, model_uri="file:///store/runs/run1/model",
                       model_dir=str(model_dir), run_id="run1",
                       staging=f"gs://{bucket}/proj/vertex", progress=lines.append)
    assert uri == f"gs://{bucket}/proj/vertex/models/run1"
    objects = stored(clients, bucket, "proj/vertex/models/run1")
    assert sorted(objects) == ["mldock-model.json", "model.joblib", "sub/labels.txt"]
    for rel, (content, digest) in objects.items():
        assert content == (model_dir / rel).read_bytes()
        assert digest == hashlib.sha256(content).hexdigest()
    assert any(line.startswith("uploading the model of run run1 (3 files") for line in lines)


def test_an_unchanged_model_is_not_sent_again_and_a_changed_one_is_made_equal(
        clients, bucket, model_dir):
    staging = f"gs://{bucket}/p"
    artifact_uri(clients, model_uri="", model_dir=str(model_dir), run_id="r2", staging=staging)
    lines: list[str] = []
    artifact_uri(clients, model_uri="", model_dir=str(model_dir), run_id="r2", staging=staging,
                 progress=lines.append)
    assert lines == [f"the model of run r2 already at gs://{bucket}/p/models/r2"]
    (model_dir / "sub" / "labels.txt").write_text("a\nb\n")
    os.remove(model_dir / "model.joblib")
    lines.clear()
    artifact_uri(clients, model_uri="", model_dir=str(model_dir), run_id="r2", staging=staging,
                 progress=lines.append)
    assert lines[0].startswith("uploading the model of run r2 (1 files")
    objects = stored(clients, bucket, "p/models/r2")
    assert sorted(objects) == ["mldock-model.json", "sub/labels.txt"]  # the stale file removed
    assert objects["sub/labels.txt"][0] == b"a\nb\n"


def test_a_model_trained_on_vertex_is_used_where_it_is(clients):
    uri = "gs://bkt/proj/vertex/jobs/proj-r1/model/"
    assert artifact_uri(clients, model_uri=uri, model_dir=None, run_id="r1",
                        staging="gs://other/x") == uri.rstrip("/")


def test_what_cannot_be_staged_is_refused_in_one_line(clients, tmp_path, bucket):
    with pytest.raises(UsageError, match=r"is not a gs:// folder and no local copy"):
        artifact_uri(clients, model_uri="s3://b/model.tar.gz", model_dir=None, run_id="r",
                     staging=f"gs://{bucket}")
    with pytest.raises(MldockError, match="holds no trained model") as info:
        artifact_uri(clients, model_uri="", model_dir=str(tmp_path), run_id="r",
                     staging=f"gs://{bucket}")
    assert info.value.exit_code == 4
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the model")
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "mldock-model.json").write_text("{}")
    (folder / "leak").symlink_to(outside)
    with pytest.raises(MldockError, match="leak"):
        artifact_uri(clients, model_uri="", model_dir=str(folder), run_id="r",
                     staging=f"gs://{bucket}")
    assert stored(clients, bucket, "models/r") == {}  # refused before anything was sent


def test_a_missing_bucket_is_one_line(clients, model_dir):
    missing = f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    with pytest.raises(NotFoundError) as info:
        artifact_uri(clients, model_uri="", model_dir=str(model_dir), run_id="r",
                     staging=f"gs://{missing}/p")
    assert info.value.message == (f"bucket {missing!r} does not exist (needed to upload the"
                                  f" model of run r to gs://{missing}/p/models/r)")
    assert f"gs://{missing}" in (info.value.hint or "")


def test_locations_are_parsed_strictly():
    assert split_uri("gs://bkt/a/b/") == ("bkt", "a/b")
    assert split_uri("gs://bkt") == ("bkt", "")
    for bad in ("s3://bkt/x", "gs:///x", "bkt/x", "gs://Upper/x"):
        with pytest.raises(UsageError, match=r"invalid GCS URI"):
            split_uri(bad)
    assert str(local_folder("file:///a%20b/m", None)) == "/a b/m"
    assert str(local_folder("rel/m", None)) == "rel/m"
    assert local_folder("gs://b/m", None) is None
    assert str(local_folder("gs://b/m", "/fetched")) == "/fetched"
