"""The hosts of one SageMaker job finish together: secondaries wait for the primary to be done.

Why: the SageMaker SDK's local mode runs the hosts under docker-compose with
``--abort-on-container-exit``, so the first host to exit stops all the others. A secondary that
finishes first (it publishes nothing, so it is quick) killed the primary before it had written the
model (seen with SDK v2, ``instance_count=2``, in 3 runs out of 4 on a loaded machine). SageMaker's
own training toolkit makes MPI workers wait for their master for the same reason.

How: while it trains, the primary holds a TCP port open (``MLDOCK_FINISH_PORT``, default 7787; the
hosts of a SageMaker job reach each other on every port). A secondary, once its own training is
done, connects to the primary's host and waits until the primary closes the connection — because
it finished, or because it crashed — at most ``MLDOCK_PRIMARY_WAIT`` seconds (default 3600; ``0``
turns the wait off). A primary that cannot be reached within a short window (it finished already,
or its name does not resolve) is not waited for. Only SageMaker needs this: Vertex AI and Azure ML
end a job when all its replicas have exited, whatever their order.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Mapping

from mldock.runtime.logs import log

PORT_ENV = "MLDOCK_FINISH_PORT"
WAIT_ENV = "MLDOCK_PRIMARY_WAIT"
DEFAULT_PORT = 7787
DEFAULT_WAIT = 3600.0
CONNECT_WINDOW = 30.0
"""How long a secondary keeps trying to reach the primary's port (it may still be starting)."""


def _port(env: Mapping[str, str]) -> int:
    try:
        return int(env.get(PORT_ENV) or DEFAULT_PORT)
    except ValueError:
        return DEFAULT_PORT


def _wait_seconds(env: Mapping[str, str]) -> float:
    try:
        return max(0.0, float(env.get(WAIT_ENV) or DEFAULT_WAIT))
    except ValueError:
        return DEFAULT_WAIT


class PrimaryHold:
    """The primary's side: accept secondaries' connections and keep them open until released."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._peers: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="mldock-finish-hold",
                                        daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                peer, _ = self._sock.accept()
            except OSError:
                return  # released
            with self._lock:
                self._peers.append(peer)

    def release(self) -> None:
        """Training is over (done or failed): let every waiting secondary go."""
        with contextlib.suppress(OSError):
            self._sock.close()
        with self._lock:
            peers, self._peers = self._peers, []
        for peer in peers:
            with contextlib.suppress(OSError):
                peer.close()


def hold(rank: int, world_size: int, env: Mapping[str, str] | None = None) -> PrimaryHold | None:
    """On the primary of a multi-host job, open the port secondaries wait on (else None)."""
    env = os.environ if env is None else env
    if rank != 0 or world_size < 2 or _wait_seconds(env) == 0:
        return None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", _port(env)))  # noqa: S104 - the other hosts of the job connect
        sock.listen(max(world_size, 8))
    except OSError as exc:
        sock.close()
        log(f"cannot open port {_port(env)} for the other hosts to wait on ({exc}); they will"
            f" not wait for this host (set {PORT_ENV} to a free port)")
        return None
    return PrimaryHold(sock)


def _connect(host: str, port: int, window: float) -> socket.socket | None:
    deadline = time.monotonic() + window
    while True:
        try:
            return socket.create_connection((host, port), timeout=5)
        except socket.gaierror:
            return None  # SageMaker and compose name every host up front: no network between them
        except OSError:
            pass  # refused: the primary is not listening yet, or has finished already
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)


def wait_for_primary(rank: int, world_size: int, primary: str,
                     env: Mapping[str, str] | None = None) -> None:
    """On a secondary, block until the primary host has finished (bounded; see module doc)."""
    env = os.environ if env is None else env
    wait = _wait_seconds(env)
    if rank == 0 or world_size < 2 or wait == 0 or not primary:
        return
    sock = _connect(primary, _port(env), min(CONNECT_WINDOW, wait))
    if sock is None:
        log(f"primary host {primary} not reachable on port {_port(env)}: not waiting for it")
        return
    log(f"waiting for the primary host {primary} to finish (at most {wait:.0f} s)")
    sock.settimeout(wait)
    try:
        while sock.recv(1024):
            pass
    except OSError:
        log(f"stopped waiting for the primary host {primary} after {wait:.0f} s")
    finally:
        sock.close()
