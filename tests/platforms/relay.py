"""A TCP relay from the Docker bridge's gateway to a service on the host's loopback.

Some SDKs start containers on the default bridge network and offer no way to choose another
(Vertex AI's ``LocalModel`` calls ``containers.run`` with ports and environment only). A container
there cannot reach 127.0.0.1 of the host, where the test's emulators listen. The relay listens on
the bridge's gateway address (reachable from the host and its containers, not from other machines)
and copies bytes both ways to the loopback service; it lives as long as its ``with`` block.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

BLOCK = 1 << 16


def bridge_gateway(engine: Any) -> str:
    """The default bridge network's gateway address (``172.17.0.1`` on a stock engine)."""
    configs = engine.networks.get("bridge").attrs["IPAM"]["Config"]
    return next(c["Gateway"] for c in configs if c.get("Gateway") and ":" not in c["Gateway"])


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(BLOCK):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


@dataclass
class Relay:
    host: str
    port: int
    connections: int = 0  # relayed so far: proof that the container came through

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.contextmanager
def relay(listen_host: str, target: tuple[str, int]) -> Iterator[Relay]:
    """Relay ``listen_host:<free port>`` to ``target`` while the block runs."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            found.connections += 1
            with socket.create_connection(target, timeout=30) as upstream:
                upstream.settimeout(None)
                back = threading.Thread(target=_pump, args=(upstream, self.request),
                                        daemon=True)
                back.start()
                _pump(self.request, upstream)
                back.join()

    server = socketserver.ThreadingTCPServer((listen_host, 0), Handler)
    server.daemon_threads = True
    found = Relay(*server.server_address[:2])
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="relay")
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
