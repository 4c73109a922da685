"""Azurite (Microsoft's Azure Storage emulator) on loopback, installed with npm on first use.

Azurite is a Node.js program, not a Python package, so it is installed once with
``npm install azurite@VERSION`` into a cache folder (``MLDOCK_TEST_CACHE``, default
``~/.cache/mldock/test-tools``) and started with ``npx azurite-blob`` from there. The install is
guarded by a file lock: parallel test sessions wait for one install instead of racing.
The account is Azurite's well-known development account (its key is public, in Azure's docs).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

from mldock.testing.docker import unavailable
from mldock.testing.processes import LOOPBACK, ProcessSet, ServerProcess, free_port, require_program

# 3.35 is the newest release whose package accepts Node 18 (Debian 12's nodejs); later ones ask >=22
AZURITE_VERSION = os.environ.get("MLDOCK_TEST_AZURITE_VERSION", "3.35.0")
ACCOUNT = "devstoreaccount1"
# Azurite's fixed development key, published in Azure's documentation: not a secret
ACCOUNT_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")
INSTALL_TIMEOUT = 600.0


class Azurite:
    """A running ``azurite-blob``: the Blob service of account :data:`ACCOUNT` at
    :attr:`blob_endpoint`, data kept under :attr:`location`."""

    account = ACCOUNT
    account_key = ACCOUNT_KEY

    def __init__(self, server: ServerProcess, location: Path) -> None:
        self.server = server
        self.location = location

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def blob_endpoint(self) -> str:
        """``http://127.0.0.1:PORT/devstoreaccount1`` (path-style, as Azurite serves it)."""
        return f"{self.server.url}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        """What ``BlobServiceClient.from_connection_string`` takes."""
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint={self.blob_endpoint};")

    def stop(self) -> None:
        self.server.stop()


def cache_folder() -> Path:
    """Where test tools installed on first use live (kept between sessions)."""
    configured = os.environ.get("MLDOCK_TEST_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mldock" / "test-tools"


def install_azurite(version: str = AZURITE_VERSION) -> Path:
    """The folder holding ``node_modules/.bin/azurite-blob`` at ``version``; runs
    ``npm install`` there the first time (skips, or fails under CI, when that is impossible)."""
    npm = require_program("npm", "install Node.js and npm (apt-get install nodejs npm)")
    folder = cache_folder() / f"azurite-{version}"
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / "node_modules" / ".bin" / "azurite-blob"
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be installing right now
        if program.exists():
            return folder
        log = folder / "npm-install.log"
        with log.open("wb") as out:
            try:
                done = subprocess.run(
                    [npm, "install", "--no-audit", "--no-fund", "--no-save",
                     "--prefix", str(folder), f"azurite@{version}"],
                    stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT, check=False)
                code: int | str = done.returncode
            except subprocess.TimeoutExpired:
                code = f"timeout after {INSTALL_TIMEOUT:.0f} s"
        if code != 0 or not program.exists():
            tail = log.read_text(errors="replace")[-2000:]
            unavailable(f"npm install azurite@{version} failed ({code}); see {log}:\n{tail}")
    return folder


def start_azurite(processes: ProcessSet, location: Path) -> Azurite:
    """Start ``npx azurite-blob`` on a free loopback port, storing its data under ``location``.

    ``--skipApiVersionCheck`` lets a newer Azure SDK talk to it; ``--disableTelemetry`` keeps it
    off the network. Ready when the Blob endpoint answers (403 without a signature is an answer).
    """
    folder = install_azurite()
    npx = require_program("npx", "install Node.js and npm (apt-get install nodejs npm)")
    location.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # "--no": never download; "--": npm must not read Azurite's options as its own (it would
    # silently take --location and drop the rest, and Azurite would start on its default port)
    command = [npx, "--no", "--", "azurite-blob", "--blobHost", LOOPBACK, "--blobPort", str(port),
               "--location", str(location), "--skipApiVersionCheck", "--disableTelemetry",
               "--silent"]
    server = processes.start("azurite-blob", command, port=port, cwd=folder,
                             health_url=f"http://{LOOPBACK}:{port}/{ACCOUNT}?comp=list")
    return Azurite(server, location)
