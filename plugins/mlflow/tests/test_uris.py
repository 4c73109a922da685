"""Tracking URIs and how a training container reaches a server on the host's loopback."""

from __future__ import annotations

import pytest
from mldock_mlflow.uris import (
    TrackingUriError,
    container_environment,
    container_extra_hosts,
    container_tracking_uri,
    http_uri,
    is_loopback,
)


@pytest.mark.parametrize(("uri", "expected"), [
    ("mlflow+http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("mlflow+https://mlflow.example.com/", "https://mlflow.example.com"),
    ("MLFLOW+HTTP://localhost:5000/prefix/", "http://localhost:5000/prefix"),
    ("http://10.1.2.3:5000", "http://10.1.2.3:5000"),
    ("https://mlflow.example.com:8443", "https://mlflow.example.com:8443"),
])
def test_http_uri_strips_the_selector(uri, expected):
    assert http_uri(uri) == expected


@pytest.mark.parametrize(("uri", "problem"), [
    ("sqlite:///runs.db", "not an MLflow server URL"),
    ("mlflow+file:///tmp/mlruns", "not an MLflow server URL"),
    ("databricks", "not an MLflow server URL"),
    ("mlflow+http://", "names no host"),
    ("http://user:pw@127.0.0.1:5000", "holds credentials"),
])
def test_http_uri_rejects_what_it_cannot_use(uri, problem):
    with pytest.raises(TrackingUriError, match=problem):
        http_uri(uri)


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.10.0.7", True), ("localhost", True), ("LOCALHOST", True),
    ("::1", True), ("[::1]", True), ("0.0.0.0", True), ("app.localhost", True),
    ("10.0.0.5", False), ("mlflow.example.com", False), ("host.docker.internal", False),
    (None, False),
])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_loopback_uri_is_rewritten_for_the_container_with_its_port_and_path():
    assert (container_tracking_uri("mlflow+http://127.0.0.1:5000/mlflow")
            == "http://host.docker.internal:5000/mlflow")
    assert container_tracking_uri("http://localhost") == "http://host.docker.internal"
    assert container_tracking_uri("mlflow+http://[::1]:5000") == "http://host.docker.internal:5000"


def test_remote_uri_is_left_alone():
    assert (container_tracking_uri("mlflow+https://mlflow.example.com")
            == "https://mlflow.example.com")
    assert container_extra_hosts("mlflow+https://mlflow.example.com") == {}


def test_container_environment_names_server_experiment_and_run():
    env = container_environment("mlflow+http://127.0.0.1:5000", experiment="iris",
                                run_id="0123456789abcdef0123456789abcdef")
    assert env == {"MLFLOW_TRACKING_URI": "http://host.docker.internal:5000",
                   "MLFLOW_EXPERIMENT_NAME": "iris",
                   "MLFLOW_RUN_ID": "0123456789abcdef0123456789abcdef"}
    assert not any("USERNAME" in k or "PASSWORD" in k for k in env)


def test_container_environment_with_an_explicit_gateway_address():
    """Engines older than 20.10 have no host-gateway: the bridge's gateway address is used."""
    env = container_environment("mlflow+http://127.0.0.1:5000", host="172.17.0.1")
    assert env == {"MLFLOW_TRACKING_URI": "http://172.17.0.1:5000"}


def test_extra_hosts_map_the_alias_to_the_host_gateway():
    assert container_extra_hosts("mlflow+http://127.0.0.1:5000") == {
        "host.docker.internal": "host-gateway"}
    assert container_extra_hosts("http://localhost:5000", gateway="172.17.0.1") == {
        "host.docker.internal": "172.17.0.1"}
