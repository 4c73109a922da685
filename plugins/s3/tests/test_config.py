"""``[storage.s3]``: validation, secrets only by environment indirection, endpoint from the env."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from mldock.errors import UsageError
from mldock_s3.config import S3Options
from mldock_s3.location import S3Location
from mldock_s3.progress import TransferProgress
from mldock_s3.store import S3ArtifactStore
from pydantic import ValidationError


def test_defaults_leave_everything_to_the_aws_chain():
    options = S3Options()
    assert (options.endpoint_url, options.region, options.profile) == (None, None, None)
    assert options.addressing_style == "auto" and options.access_key_id is None


@pytest.mark.parametrize("bad", [
    {"endpoint_url": "127.0.0.1:9000"},
    {"endpoint_url": "http://user:pw@host:9000"},
    {"addressing_style": "dns"},
    {"max_concurrency": 0},
    {"multipart_chunk_mb": 4},
    {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "env:S"},
    {"access_key_id": "env:K"},
    {"session_token": "env:T"},
    {"anonymous": True, "profile": "dev"},
    {"endpoint": "http://x"},
])
def test_invalid_options_are_rejected(bad):
    with pytest.raises(ValidationError):
        S3Options(**bad)


def test_secrets_are_env_names_read_only_when_connecting(monkeypatch, moto, bucket, tmp_path):
    options = S3Options(endpoint_url=moto.url, access_key_id="env:STORE_KEY",
                        secret_access_key={"env": "STORE_SECRET"})
    assert options.model_dump()["secret_access_key"] == "env:STORE_SECRET"
    monkeypatch.setenv("STORE_KEY", "testing")
    monkeypatch.setenv("STORE_SECRET", "testing")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = S3ArtifactStore(f"s3://{bucket}/secrets", options)
    (tmp_path / "f").write_text("x")
    assert store.put_file(tmp_path / "f", "k").size == 1
    assert store.connection.credential_source() == "explicit"


def test_endpoint_from_aws_endpoint_url_s3(monkeypatch, moto, bucket, tmp_path):
    """No endpoint_url in the config: boto3 takes AWS_ENDPOINT_URL_S3 from the environment."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto.url)
    store = S3ArtifactStore(f"s3://{bucket}/from-env", S3Options())
    (tmp_path / "f").write_text("x")
    store.put_file(tmp_path / "f", "k")
    assert store.connection.endpoint == moto.url and store.exists("k")


@pytest.mark.parametrize(("uri", "bucket", "prefix"), [
    ("s3://b-1", "b-1", ""), ("s3://b-1/", "b-1", ""), ("s3://b.x/a/b/", "b.x", "a/b"),
])
def test_uris(uri, bucket, prefix):
    location = S3Location.parse(uri)
    assert (location.bucket, location.prefix) == (bucket, prefix)
    assert S3ArtifactStore(uri).uri_for("k") == f"s3://{bucket}/{prefix + '/' if prefix else ''}k"


@pytest.mark.parametrize("uri", ["", "s3://", "s3:///x", "gs://b/x", "s3://b a/x", "s3://b/a\\b"])
def test_bad_uris(uri):
    with pytest.raises(UsageError):
        S3ArtifactStore(uri)


def test_literal_secret_in_mldock_toml_is_refused_without_echoing_it(tmp_path):
    """Core's loader refuses a literal key in [storage.s3]; the value is never printed."""
    (tmp_path / "mldock.toml").write_text(
        '[project]\nname = "demo"\ntrain = "demo.train:train"\n'
        'predictor = "demo.predict:Predictor"\n\n[storage]\nuri = "s3://b/demo"\n\n'
        '[storage.s3]\naccess_key_id = "env:K"\nsecret_access_key = "hunter2-literal"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    out = subprocess.run([sys.executable, "-c", "from mldock.cli.main import main; main()",
                          "config", "validate"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env=env, check=False)
    assert out.returncode == 2
    assert "storage.s3.secret_access_key" in out.stderr
    assert "hunter2-literal" not in out.stdout + out.stderr


def test_progress_lines_are_throttled_strings():
    lines: list[str] = []
    meter = TransferProgress(lines.append, "uploading", "runs/1/model", 100 << 20, interval=0)
    for _ in range(4):
        meter.add(25 << 20)
    assert len(lines) == 4 and lines[0].startswith("uploading runs/1/model: 25% (25.0 MiB of")
    assert lines[-1].startswith("uploading runs/1/model: 100% (100.0 MiB of 100.0 MiB, ")
    quiet: list[str] = []
    small = TransferProgress(quiet.append, "uploading", "k", 1 << 20, interval=0)
    small.add(1 << 20)
    assert quiet == []  # small transfers print only their final line (from the store)
