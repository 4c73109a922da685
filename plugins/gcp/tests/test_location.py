"""``gs://`` URIs: what is a bucket and a prefix, and what is refused before any request."""

from __future__ import annotations

import pytest
from mldock.errors import UsageError
from mldock_gcp.location import GcsLocation


@pytest.mark.parametrize(("uri", "bucket", "prefix"), [
    ("gs://my-models", "my-models", ""),
    ("gs://my-models/", "my-models", ""),
    ("gs://my-models/iris", "my-models", "iris"),
    ("GS://my-models//iris/v1/", "my-models", "iris/v1"),
    ("  gs://a_b.c-d/x y  ", "a_b.c-d", "x y"),
    ("gs://" + "a" * 63, "a" * 63, ""),
    ("gs://" + ".".join(["a" * 60] * 3), ".".join(["a" * 60] * 3), ""),
])
def test_parse(uri, bucket, prefix):
    location = GcsLocation.parse(uri)
    assert (location.bucket, location.prefix) == (bucket, prefix)
    assert location.uri == (f"gs://{bucket}/{prefix}" if prefix else f"gs://{bucket}")


@pytest.mark.parametrize(("uri", "problem"), [
    ("s3://bucket/x", "must start with gs://"),
    ("", "must start with gs://"),
    ("gs://", "is not a bucket name"),
    ("gs://ab", "is not a bucket name"),
    ("gs://My-Bucket", "is not a bucket name"),
    ("gs://-bucket", "is not a bucket name"),
    ("gs://bucket-", "is not a bucket name"),
    ("gs://" + "a" * 64, "longer than 63"),
    ("gs://a..b", "empty or over-long part"),
    ("gs://" + "a" * 64 + ".com", "empty or over-long part"),
    ("gs://goog-models", "reserved by Google"),
    ("gs://my-google-models", "reserved by Google"),
    ("gs://192.168.1.10", "looks like an IP address"),
    ("gs://bucket/a\nb", "control character"),
    ("gs://bucket/" + "x" * 600, "too long"),
])
def test_refused(uri, problem):
    with pytest.raises(UsageError) as info:
        GcsLocation.parse(uri)
    assert problem in info.value.message
    assert "gs://<bucket>/<prefix>" in info.value.hint
    assert "\n" not in info.value.message.replace(repr(uri), "")


def test_names_under_the_prefix():
    location = GcsLocation.parse("gs://bucket/root")
    assert location.key("refs", "a/b", ".mldock-ref") == "root/refs/a/b/.mldock-ref"
    assert location.child("data").uri == "gs://bucket/root/data"
    assert location.object_uri("root/x") == "gs://bucket/root/x"
    assert GcsLocation.parse("gs://bucket").key("blobs") == "blobs"
