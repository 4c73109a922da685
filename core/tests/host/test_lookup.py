"""Unknown names: the known ones listed, the closest suggested, first-party packages named."""

from __future__ import annotations

import pytest
from mldock.errors import UnknownBackendError
from mldock.host.loader import PluginHost
from mldock.host.registry import uri_scheme


@pytest.fixture(scope="module")
def registry():
    return PluginHost(use_entry_points=False).registry


def test_unknown_first_party_deployer_says_which_package_to_install(registry):
    with pytest.raises(UnknownBackendError) as caught:
        registry.get("deployer", "sagemaker")
    assert "known: local" in caught.value.message
    assert caught.value.hint == "'sagemaker' is provided by mldock-aws: pip install mldock-aws"


def test_unknown_name_suggests_closest(registry):
    with pytest.raises(UnknownBackendError) as caught:
        registry.get("deployer", "locl")
    assert caught.value.hint == "did you mean 'local'?"


def test_unknown_name_without_match_points_to_plugins_list(registry):
    with pytest.raises(UnknownBackendError) as caught:
        registry.get("builder", "zzzzzz")
    assert "mldock plugins list" in caught.value.hint


@pytest.mark.parametrize(("uri", "package"), [("s3://bucket/x", "mldock-s3"),
                                              ("gs://b/x", "mldock-gcp"),
                                         ("az://c/x", "mldock-azure")])
def test_unknown_storage_scheme_names_package(registry, uri, package):
    with pytest.raises(UnknownBackendError) as caught:
        registry.by_scheme("storage", uri)
    assert f"pip install {package}" in caught.value.hint
    assert uri in caught.value.message


def test_mlflow_tracking_uri_names_package(registry):
    with pytest.raises(UnknownBackendError) as caught:
        registry.by_scheme("tracker", "mlflow+http://127.0.0.1:5000")
    assert "pip install mldock-mlflow" in caught.value.hint


@pytest.mark.parametrize(("uri", "scheme"), [("/abs/path", "file"), ("rel/path", "file"),
                                        ("file:///x", "file"), ("S3://b", "s3"),
                                        ("C:\\data", "file"), ("sqlite:///x.db", "sqlite")])
def test_uri_scheme(uri, scheme):
    assert uri_scheme(uri) == scheme


def test_builtin_backends_resolve(registry):
    assert registry.get("builder", "docker").name == "docker"
    assert registry.by_scheme("storage", "/tmp/x").name == "local"
    assert registry.by_scheme("tracker", "sqlite:///runs.db").name == "sqlite"
    assert registry.get("deployer", "local").name == "local"
