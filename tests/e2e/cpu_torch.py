"""A local stand-in for PyTorch's CPU-only package index, for building the pytorch template.

From plain PyPI the template's ``torch`` is the CUDA build: a 195 s cold build and a 5.8 GB image
here, too much to build in every test session. Users shrink it by pointing pip at PyTorch's CPU
index from ``requirements.txt`` (the template's README); this module does exactly that, with
the index served from this machine: a PEP 503 "simple" page for a CPU build of torch found on
disk (``MLDOCK_TEST_TORCH_WHEELS``, default ``/opt/wheels``, where this machine keeps one), on
the Docker bridge's gateway address so that ``docker build`` reaches it. torch's own
dependencies still come from PyPI. Without such a wheel the project is left as it is and builds
from plain PyPI (slow, but what a user gets).

One index serves the whole test process (:func:`shared_index`), on a fixed port when it is free:
the same URL in every build keeps the dependency layer in Docker's build cache from one build (and
one test session) to the next, instead of a new gigabyte of layers each time.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import html
import http.server
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFERRED_PORT = 47911
"""Tried first: a requirements file naming the same index URL as an earlier build lets Docker
reuse that build's dependency layer (the layers of removed test images stay as build cache)."""
WHEEL = re.compile(r"^torch-(?P<version>[^-]+\+cpu)-cp311-cp311-manylinux[^-]*_x86_64\.whl$")


def cpu_wheel() -> Path | None:
    """A CPU build of torch for CPython 3.11 on x86_64 found on disk, newest first."""
    folder = Path(os.environ.get("MLDOCK_TEST_TORCH_WHEELS", "/opt/wheels"))
    found = sorted(p for p in folder.glob("torch-*.whl") if WHEEL.match(p.name)) \
        if folder.is_dir() else []
    return found[-1] if found else None


def bridge_gateway(engine: Any) -> str:
    """The default bridge network's gateway (where ``docker build`` containers see the host)."""
    configs = engine.networks.get("bridge").attrs["IPAM"]["Config"]
    return next(c["Gateway"] for c in configs if c.get("Gateway") and ":" not in c["Gateway"])


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class WheelIndex:
    """A simple index of one wheel: ``url`` is what ``--extra-index-url`` takes."""

    host: str
    port: int
    version: str
    server: http.server.ThreadingHTTPServer
    folder: tempfile.TemporaryDirectory

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/simple/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.folder.cleanup()


def serve(wheel: Path, host: str) -> WheelIndex:
    """Serve ``wheel`` as the only file of project ``torch`` on ``host`` (a free port)."""
    folder = tempfile.TemporaryDirectory(prefix="mldock-cpu-index-")
    root = Path(folder.name)
    (root / "files").mkdir()
    (root / "files" / wheel.name).symlink_to(wheel.resolve())
    page = root / "simple" / "torch"
    page.mkdir(parents=True)
    link = html.escape(f"../../files/{wheel.name}".replace("+", "%2B"))
    page.joinpath("index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="{link}">{html.escape(wheel.name)}</a>'
        "</body></html>\n")
    handler = functools.partial(_Quiet, directory=str(root))
    try:  # the same URL as last session: the image's dependency layer comes from the cache
        server = http.server.ThreadingHTTPServer((host, PREFERRED_PORT), handler)
    except OSError:  # another test process serves it right now
        server = http.server.ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    version = WHEEL.match(wheel.name)["version"]  # type: ignore[index]
    return WheelIndex(host, server.server_address[1], version, server, folder)


_shared: dict[str, WheelIndex] = {}  # the process's one index, under "index"
_lock = threading.Lock()


def shared_index(engine: Any) -> WheelIndex | None:
    """The process's one index (started on first use), or None without a CPU wheel on disk."""
    with _lock:
        if "index" not in _shared:
            wheel = cpu_wheel()
            if wheel is None:
                return None
            _shared["index"] = serve(wheel, bridge_gateway(engine))
            atexit.register(close_shared)
        return _shared["index"]


def use_cpu_torch(project: Path, engine: Any) -> str | None:
    """Point ``project``'s requirements at the local CPU index, as its README tells users to do
    with PyTorch's; returns the pinned torch version, or None (left on plain PyPI)."""
    index = shared_index(engine)
    if index is None:
        return None
    requirements = project / "requirements.txt"
    lines = [f"torch=={index.version}" if re.match(r"^torch\b", line) else line
             for line in requirements.read_text().splitlines()]
    header = [f"--extra-index-url {index.url}", f"--trusted-host {index.host}"]
    requirements.write_text("\n".join(header + lines) + "\n")
    return index.version


def close_shared() -> None:
    """Stop the shared index (at exit of the test process)."""
    with _lock:
        index = _shared.pop("index", None)
    if index is not None:
        with contextlib.suppress(Exception):
            index.close()
