"""A real S3 endpoint for the tests: moto in server mode on 127.0.0.1, from mldock's test harness.

The harness (``mldock.testing.fixtures``, enabled in the repository's root conftest) starts
``moto_server`` once per session; ``moto`` resets it before each test, so every test starts on an
empty account and creates its own bucket. Every test runs with dummy keys and with the developer's
own AWS files and variables hidden (``aws_sandbox``): a test can never reach a real account.
"""

from __future__ import annotations

import uuid

import pytest

BUCKET = "mldock-tests"


@pytest.fixture(autouse=True)
def aws_env(aws_sandbox):
    """Every test in this suite runs in the harness's AWS sandbox (dummy keys, no ~/.aws)."""
    return aws_sandbox


@pytest.fixture
def s3(moto):
    """A plain boto3 client on the moto server, to look at what the store really wrote."""
    import boto3

    return boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def bucket(s3) -> str:
    """The test's bucket, on the account ``moto`` just reset; tests use their own prefix in it."""
    s3.create_bucket(Bucket=BUCKET)
    return BUCKET


@pytest.fixture
def options(moto):
    """Options pointing at moto, with 5 MiB parts so multipart paths run on small files."""
    from mldock_s3.config import S3Options

    return S3Options(endpoint_url=moto.url, max_concurrency=4, multipart_threshold_mb=5,
                     multipart_chunk_mb=5)


@pytest.fixture
def make_store(bucket, options):
    """``make_store(prefix=None, **option_overrides)``: a store under a fresh prefix."""
    from mldock_s3.store import S3ArtifactStore

    def make(prefix: str | None = None, **overrides):
        prefix = prefix or f"t-{uuid.uuid4().hex[:12]}"
        from mldock_s3.config import S3Options

        opts = S3Options(**{**options.model_dump(), **overrides}) if overrides else options
        return S3ArtifactStore(f"s3://{bucket}/{prefix}", opts)

    return make
