"""Fixtures of the ``gs://`` store tests, on the harness's GCS emulator (loopback).

Test modules take them with ``from gcs_support import *`` (the folder is on ``sys.path``, see
``conftest.py``). Every test gets its own uniquely named bucket on the session's emulator and
reaches it the way a user reaches one: ``[storage.gcs] endpoint_url`` (a plain-HTTP endpoint, so
requests go without credentials).
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

__all__ = ["cutting_proxy", "gcs", "gcs_bucket", "gcs_options", "make_store"]


@pytest.fixture
def gcs(gcs_emulator: str) -> Any:
    """A plain google-cloud-storage client on the emulator, to look at what the store wrote."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project="test", credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": gcs_emulator})


@pytest.fixture
def gcs_bucket(make_gcs_bucket: Callable[[str], str]) -> str:
    """A new bucket for the test."""
    return make_gcs_bucket("mldock-store")


@pytest.fixture
def gcs_options(gcs_emulator: str) -> Any:
    """Options on the emulator with 1 MiB chunks, so parallel parts and ranges run on small
    files."""
    from mldock_gcp.config import GcsOptions

    return GcsOptions(endpoint_url=gcs_emulator, max_concurrency=4, chunk_mb=1)


@pytest.fixture
def make_store(gcs_bucket: str, gcs_options: Any) -> Callable[..., Any]:
    """``make_store(prefix=None, **option_overrides)``: a store under a fresh prefix."""
    from mldock_gcp.config import GcsOptions
    from mldock_gcp.store import GcsArtifactStore

    def make(prefix: str | None = None, **overrides: Any) -> GcsArtifactStore:
        prefix = prefix or f"p-{uuid.uuid4().hex[:12]}"
        options = GcsOptions(**{**gcs_options.model_dump(), **overrides}) if overrides \
            else gcs_options
        return GcsArtifactStore(f"gs://{gcs_bucket}/{prefix}", options)

    return make


class CuttingProxy:
    """A TCP proxy on loopback to the emulator that drops one connection mid-request: the first
    one whose client has sent more than ``cut_after`` bytes (a big upload's body). With
    ``flip=True`` it instead flips one bit there and lets the request go on (bytes damaged on
    the way, as a faulty NIC or middlebox would)."""

    def __init__(self, target: tuple[str, int], cut_after: int, flip: bool = False):
        self.target, self.cut_after, self.flip = target, cut_after, flip
        self.cuts = 0
        self.uploaded = 0  # bytes clients sent through the proxy, all connections together
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with socket.create_connection(proxy.target) as upstream:
                    back = threading.Thread(target=proxy.pump, args=(upstream, self.request),
                                            daemon=True)
                    back.start()
                    proxy.pump(self.request, upstream, cut=True)
                    back.join(timeout=30)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def pump(self, source: socket.socket, target: socket.socket, cut: bool = False) -> None:
        sent = 0
        with contextlib.suppress(OSError):
            while data := source.recv(1 << 16):
                if cut and self.flip and sent + len(data) > self.cut_after and self._take_cut():
                    data = data[:-1] + bytes([data[-1] ^ 0x01])
                target.sendall(data)
                sent += len(data)
                if cut:
                    with self._lock:
                        self.uploaded += len(data)
                if cut and not self.flip and sent > self.cut_after and self._take_cut():
                    for end in (source, target):
                        with contextlib.suppress(OSError):
                            end.shutdown(socket.SHUT_RDWR)
                    return
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def _take_cut(self) -> bool:
        with self._lock:
            if self.cuts:
                return False
            self.cuts += 1
            return True


@pytest.fixture
def cutting_proxy(gcs_emulator: str) -> Iterator[Callable[..., CuttingProxy]]:
    """``cutting_proxy(cut_after, flip=False)``: a started :class:`CuttingProxy` to the
    emulator."""
    started: list[CuttingProxy] = []

    def start(cut_after: int, flip: bool = False) -> CuttingProxy:
        host, port = gcs_emulator.removeprefix("http://").rsplit(":", 1)
        proxy = CuttingProxy((host, int(port)), cut_after, flip)
        threading.Thread(target=proxy.server.serve_forever, daemon=True).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.server.shutdown()
        proxy.server.server_close()
