"""Each way reaching S3 goes wrong becomes one line naming the bucket (and key) and what to do.

Provoked for real wherever moto allows: a bucket that does not exist, a closed port, no
credentials at all, an unknown profile, and (on a second moto server with IAM enforcement turned
on) refused keys and a user whose policy denies writes. Error codes moto never sends (wrong
region, throttling) are checked by passing real botocore ClientErrors built from real S3 error
responses to the mapping function.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from botocore.exceptions import ClientError
from mldock.errors import BackendUnavailableError, MldockError, NotFoundError, UsageError
from mldock_s3.errors import describe
from mldock_s3.store import S3ArtifactStore

DUMMY_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
             "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture
def sample(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights")
    return path


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed when the block ends: nothing listens there


# --- missing bucket ---------------------------------------------------------------------------


def test_missing_bucket_is_named_with_a_hint(options, sample, tmp_path):
    bucket = f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    store = S3ArtifactStore(f"s3://{bucket}/iris", options)
    for call in (lambda: store.put_file(sample, "m"), lambda: store.get_file("m", tmp_path / "o"),
                 lambda: store.put_tree(tmp_path, "t"), lambda: store.exists("m"),
                 store.list):
        with pytest.raises(NotFoundError) as info:
            call()
        assert f"bucket {bucket!r} does not exist" in info.value.message
        assert f"aws s3 mb s3://{bucket}" in info.value.hint
        assert "\n" not in str(info.value)
    checks = {c.name: c for c in store.check()}
    assert checks["S3 credentials"].ok
    assert not checks["S3 bucket"].ok and bucket in checks["S3 bucket"].detail


# --- unreachable endpoint ---------------------------------------------------------------------


def test_unreachable_endpoint_is_named_quickly(bucket, options, sample):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    store = S3ArtifactStore(f"s3://{bucket}/x",
                            options.model_copy(update={"endpoint_url": endpoint}))
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as info:
        store.put_file(sample, "m")
    assert time.monotonic() - started < 30
    assert endpoint in info.value.message and "not reachable" in info.value.message
    assert f"s3://{bucket}" in info.value.message and "endpoint_url" in info.value.hint
    checks = {c.name: c for c in store.check()}
    assert not checks["S3 bucket"].ok and endpoint in checks["S3 bucket"].detail


# --- credentials ------------------------------------------------------------------------------


def test_no_credentials_anywhere(monkeypatch, bucket, options, sample):
    """Env cleared; AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE are empty files (conftest)."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = S3ArtifactStore(f"s3://{bucket}/x", options)
    with pytest.raises(MldockError) as info:
        store.put_file(sample, "m")
    assert info.value.message == f"cannot store 'm': no AWS credentials found for s3://{bucket}/x"
    assert "AWS_ACCESS_KEY_ID" in info.value.hint and "aws sso login" in info.value.hint
    checks = store.check()
    assert [(c.name, c.ok) for c in checks] == [("S3 credentials", False)]


def test_half_set_credentials(monkeypatch, bucket, options, sample):
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = S3ArtifactStore(f"s3://{bucket}/x", options)
    with pytest.raises(MldockError, match="incomplete"):
        store.put_file(sample, "m")


def test_unknown_profile(bucket, options, sample):
    store = S3ArtifactStore(f"s3://{bucket}/x", options.model_copy(update={"profile": "nope"}))
    with pytest.raises(MldockError, match="AWS profile 'nope' is not defined"):
        store.put_file(sample, "m")
    assert not store.check()[0].ok


# --- moto with IAM enforcement: refused keys, denied actions --------------------------------

# AWS authorises HeadBucket as s3:ListBucket; moto checks an action named after the call.
READ_ONLY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket", "s3:HeadBucket"],
                   "Resource": "*"}],
}


@pytest.fixture(scope="module")
def locked(start_moto, tmp_path_factory):
    """``(endpoint, bucket, reader_key_id, reader_secret)`` on a moto server enforcing IAM.

    Set up while enforcement is off, then ``POST /moto-api/reset-auth 0`` turns it on: from then on
    every request must be signed by a key moto's IAM knows, and is checked against its policies.
    """
    import boto3

    server = start_moto()
    with pytest.MonkeyPatch.context() as patch:  # function-scoped aws_env is not active yet
        for name, value in DUMMY_ENV.items():
            patch.setenv(name, value)
        for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            patch.setenv(name, os.devnull)
        root = {"endpoint_url": server.url, "region_name": "us-east-1",
                "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        iam = boto3.client("iam", **root)
        iam.create_user(UserName="reader")
        iam.put_user_policy(UserName="reader", PolicyName="read-only",
                            PolicyDocument=json.dumps(READ_ONLY_POLICY))
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        boto3.client("s3", **root).create_bucket(Bucket="locked")
        writer = S3ArtifactStore("s3://locked/iris", _options(server.url))
        source = tmp_path_factory.mktemp("locked-src") / "model.bin"
        source.write_bytes(b"published weights")
        writer.put_file(source, "published")
        server.post("/moto-api/reset-auth", b"0")
    return server.url, "locked", key["AccessKeyId"], key["SecretAccessKey"]


def _options(endpoint: str, **extra):
    from mldock_s3.config import S3Options

    return S3Options(endpoint_url=endpoint, **extra)


def test_access_denied_for_real(locked, monkeypatch, sample, tmp_path):
    """A read-only user (keys given by env: indirection) can read but not write; the write fails
    with one line naming the key, and doctor's writable probe fails the same way."""
    endpoint, bucket, key_id, secret = locked
    monkeypatch.setenv("READER_KEY_ID", key_id)
    monkeypatch.setenv("READER_SECRET", secret)
    options = _options(endpoint, access_key_id="env:READER_KEY_ID",
                       secret_access_key="env:READER_SECRET")
    store = S3ArtifactStore(f"s3://{bucket}/iris", options)
    assert store.get_file("published", tmp_path / "got").read_bytes() == b"published weights"
    with pytest.raises(MldockError) as info:
        store.put_file(sample, "runs/1/model")
    assert info.value.message.startswith("access denied: cannot store 'runs/1/model' at"
                                         f" s3://{bucket}/iris")
    assert "s3:PutObject" in info.value.hint
    checks = {c.name: c for c in store.check()}
    assert checks["S3 credentials"].ok and checks["S3 bucket"].ok
    assert not checks["S3 artifact store"].ok
    assert "access denied" in checks["S3 artifact store"].detail
    assert secret not in repr(options) and secret not in str(info.value)


def test_unknown_keys_are_rejected_for_real(locked, sample, tmp_path):
    """moto's IAM does not know the dummy 'testing' key: InvalidAccessKeyId, 403."""
    endpoint, bucket, _, _ = locked
    store = S3ArtifactStore(f"s3://{bucket}/iris", _options(endpoint))
    with pytest.raises(MldockError) as info:
        store.get_file("published", tmp_path / "got")
    assert "rejected the credentials" in info.value.message and bucket in info.value.message


# --- codes moto never sends: real ClientErrors through the mapping ---------------------------


def client_error(code: str, status: int, operation: str, message: str = "",
                 headers: dict | None = None) -> ClientError:
    """A ClientError exactly as botocore builds it from a parsed S3 error response."""
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status,
                                             "HTTPHeaders": headers or {}}}, operation)


@pytest.mark.parametrize(("error", "kind", "text"), [
    (client_error("AccessDenied", 403, "PutObject", "Access Denied"), MldockError,
     "access denied: cannot store 'k' at s3://b/p/k"),
    (client_error("403", 403, "HeadObject", "Forbidden"), MldockError, "access denied"),
    (client_error("NoSuchBucket", 404, "GetObject"), NotFoundError, "bucket 'b' does not exist"),
    (client_error("404", 404, "HeadBucket"), NotFoundError, "bucket 'b' does not exist"),
    (client_error("NoSuchKey", 404, "GetObject"), NotFoundError, "s3://b/p/k does not exist"),
    (client_error("PermanentRedirect", 301, "PutObject", headers={
        "x-amz-bucket-region": "eu-west-1"}), MldockError, "another region (it is in eu-west-1)"),
    (client_error("ExpiredToken", 400, "PutObject"), MldockError, "rejected the credentials"),
    (client_error("SlowDown", 503, "PutObject"), BackendUnavailableError, "answered SlowDown"),
    (client_error("InvalidBucketName", 400, "PutObject"), UsageError, "not a valid bucket name"),
])
def test_error_mapping_of_codes(error, kind, text):
    mapped = describe(error, action="store 'k'", bucket="b", key="p/k")
    assert type(mapped) is kind and text in mapped.message and mapped.hint
    assert "\n" not in str(mapped)


# --- through the CLI ---------------------------------------------------------------------------


def test_doctor_names_the_missing_bucket(moto, tmp_path):
    """``mldock doctor --json`` on a project whose store points at a missing bucket."""
    (tmp_path / "mldock.toml").write_text(
        '[project]\nname = "demo"\ntrain = "demo.train:train"\n'
        'predictor = "demo.predict:Predictor"\n\n'
        '[storage]\nuri = "s3://not-there/demo"\n\n'
        f'[storage.s3]\nendpoint_url = "{moto.url}"\naddressing_style = "path"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    out = subprocess.run([sys.executable, "-c", "from mldock.cli.main import main; main()",
                          "doctor", "--json"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env=env, check=False)
    checks = {c["name"]: c for c in json.loads(out.stdout)}
    bucket_check = checks["storage s3 (base): S3 bucket"]
    assert not bucket_check["ok"] and "bucket 'not-there' does not exist" in bucket_check["detail"]
    assert checks["storage s3 (base): S3 credentials"]["ok"]
    assert out.returncode == 1
