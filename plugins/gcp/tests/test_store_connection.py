"""How the store reaches Cloud Storage: where requests go and with which credentials, how big
files are cut, and which failures are retried (checked on real requests and real exceptions)."""

from __future__ import annotations

import socket

import pytest
import requests
from google.api_core import exceptions as gax
from mldock_gcp.config import GcsOptions
from mldock_gcp.connection import (
    GOOGLE_ENDPOINT,
    anonymous_endpoint,
    connect,
    refused,
    transient_retry,
)

MB = 1 << 20


def test_where_requests_go_and_whether_they_are_signed(monkeypatch):
    assert anonymous_endpoint(GcsOptions()) == (GOOGLE_ENDPOINT, False)
    assert anonymous_endpoint(GcsOptions(anonymous=True)) == (GOOGLE_ENDPOINT, True)
    # a plain-HTTP endpoint never gets a bearer token
    assert anonymous_endpoint(GcsOptions(endpoint_url="http://127.0.0.1:9023/")) == (
        "http://127.0.0.1:9023", True)
    private = "https://storage-private.p.googleapis.com"
    assert anonymous_endpoint(GcsOptions(endpoint_url=private)) == (private, False)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:4443")
    assert anonymous_endpoint(GcsOptions()) == ("http://127.0.0.1:4443", True)
    assert anonymous_endpoint(GcsOptions(endpoint_url=private)) == (private, False)  # wins


def test_anonymous_client_needs_no_credentials(gcs_emulator):
    conn = connect(GcsOptions(endpoint_url=gcs_emulator))
    assert conn.identity.source == "anonymous" and conn.endpoint == gcs_emulator
    adapter = conn.session.get_adapter(gcs_emulator)
    assert adapter._pool_maxsize >= 2 * conn.options.max_concurrency  # no pool starvation


@pytest.mark.parametrize(("size", "concurrency", "chunk_mb", "part"), [
    (1024 * MB, 8, 32, 128 * MB),  # max_concurrency parts
    (100 * MB, 8, 32, 32 * MB),  # never below a chunk
    (10 * 1024 * MB, 8, 32, 256 * MB),  # never above 256 MiB (a retried range stays cheap)
    (5 * MB + 1, 4, 1, 1280 * 1024 + 256 * 1024),  # rounded up to 256 KiB
])
def test_part_size(size, concurrency, chunk_mb, part):
    conn = connect(GcsOptions(endpoint_url="http://127.0.0.1:1", max_concurrency=concurrency,
                              chunk_mb=chunk_mb))
    assert conn.part_size(size) == part
    assert conn.part_size(size) % (256 * 1024) == 0


def test_what_goes_in_parallel():
    conn = connect(GcsOptions(endpoint_url="http://127.0.0.1:1", chunk_mb=4))
    assert not conn.streamed(4 * MB - 1) and conn.streamed(4 * MB)
    assert not conn.parallel_download(8 * MB - 1) and conn.parallel_download(8 * MB)
    assert not conn.parallel_upload(10**12)  # off unless asked for
    asked = connect(GcsOptions(endpoint_url="http://127.0.0.1:1", chunk_mb=4,
                               parallel_upload_mb=100))
    assert not asked.parallel_upload(100 * MB - 1) and asked.parallel_upload(100 * MB)
    one = connect(GcsOptions(endpoint_url="http://127.0.0.1:1", max_concurrency=1,
                             parallel_upload_mb=1))
    assert not one.parallel_upload(10**9) and not one.parallel_download(10**9)


def test_what_is_retried():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(requests.ConnectionError) as info:
        requests.get(f"http://127.0.0.1:{port}/", timeout=5)
    assert refused(info.value)
    predicate = transient_retry()._predicate
    assert not predicate(info.value)  # nothing listens: no half-minute of retries
    assert predicate(requests.ConnectionError("('Connection aborted.', RemoteDisconnected())"))
    assert predicate(gax.ServiceUnavailable("busy")) and predicate(gax.TooManyRequests("slow"))
    assert not predicate(gax.NotFound("gone")) and not predicate(gax.Forbidden("no"))
    assert transient_retry()._timeout == 30.0
