"""``az://`` URIs: what is accepted, what is refused before any request, and how."""

from __future__ import annotations

import pytest
from mldock.errors import UsageError
from mldock_azure.location import BlobLocation


@pytest.mark.parametrize(("uri", "container", "prefix"), [
    ("az://models", "models", ""),
    ("az://models/", "models", ""),
    ("az://models/iris/v1/", "models", "iris/v1"),
    ("AZ://ml-artifacts-01/p", "ml-artifacts-01", "p"),
    ("az://$root/p", "$root", "p"),
])
def test_accepted(uri, container, prefix):
    location = BlobLocation.parse(uri)
    assert (location.container, location.prefix, location.account) == (container, prefix, None)


def test_account_in_uri():
    location = BlobLocation.parse("az://mystore01/models/iris", account_in_uri=True)
    assert (location.account, location.container, location.prefix) == (
        "mystore01", "models", "iris")
    assert location.uri == "az://mystore01/models/iris"
    assert location.child("data", "ab").uri == "az://mystore01/models/iris/data/ab"


@pytest.mark.parametrize(("uri", "problem"), [
    ("s3://models/p", "it must start with az://"),
    ("az://Models/p", "is not a container name"),
    ("az://ab/p", "is not a container name"),
    ("az://a--b/p", "is not a container name"),
    ("az://-ab/p", "is not a container name"),
    ("az://models/a\\b", "backslash"),
    ("az://models/a//b", "empty part"),
    ("az://models/a\nb", "control character"),
    ("az://models/" + "x" * 600, "too long"),
])
def test_refused_with_a_hint(uri, problem):
    with pytest.raises(UsageError, match=problem) as caught:
        BlobLocation.parse(uri)
    assert caught.value.hint == "write it as az://<container>/<prefix>, e.g. az://models/iris"
    assert caught.value.exit_code == 2


def test_account_in_uri_refuses_a_bad_account():
    with pytest.raises(UsageError, match="'My_Store' is not a storage account name") as caught:
        BlobLocation.parse("az://My_Store/models/p", account_in_uri=True)
    assert "az://<account>/<container>/<prefix>" in caught.value.hint


def test_keys_join_under_the_prefix():
    location = BlobLocation.parse("az://models/iris")
    assert location.key("refs", "k/.mldock-ref") == "iris/refs/k/.mldock-ref"
    assert BlobLocation.parse("az://models").key("blobs") == "blobs"
    assert str(location) == "az://models/iris"
