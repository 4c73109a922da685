"""A real image registry on loopback: Debian's ``docker-registry`` (the ``registry:2`` program).

Push tests need a registry that behaves like a cloud one, down to refusing a push without
credentials. The registry runs as a plain process (no container, nothing pulled), with a
``registry:2``-style configuration written into a temporary folder; with ``auth`` it uses an
htpasswd file made by ``htpasswd -Bbn`` (bcrypt, as the registry requires).

The Docker engine treats ``127.0.0.1:PORT`` as an insecure registry by default, so pushes over
plain HTTP work without changing the engine's configuration.
"""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from pathlib import Path

from mldock.testing.processes import (
    LOOPBACK,
    ProcessSet,
    ServerProcess,
    free_port,
    http_request,
    require_program,
)

INSTALL_HINT = "apt-get install docker-registry apache2-utils (a real registry for push tests)"
MANIFEST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
))


class LocalRegistry:
    """A running registry: ``host`` (``127.0.0.1:PORT``) for image references, and the
    ``username``/``password`` it requires (both None when it requires nothing)."""

    def __init__(self, server: ServerProcess, root: Path,
                 auth: tuple[str, str] | None = None) -> None:
        self.server = server
        self.root = root
        self.username: str | None = auth[0] if auth else None
        self.password: str | None = auth[1] if auth else None

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self.server.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def auth_config(self) -> dict[str, str] | None:
        """The ``auth_config`` the docker SDK's ``push`` takes, or None without auth."""
        if self.username is None or self.password is None:
            return None
        return {"username": self.username, "password": self.password}

    def get(self, path: str, *, authenticated: bool = True,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """``(status, headers, body)`` of ``GET path`` (``/v2/...``) on the registry's API, with
        basic auth when the registry has it and ``authenticated`` is true."""
        sent = dict(headers or {})
        if authenticated and self.username is not None:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            sent["Authorization"] = f"Basic {token}"
        return http_request("GET", self.url + path, headers=sent)

    def manifest_digest(self, repository: str, reference: str) -> str:
        """The registry's own digest (``sha256:...``) of ``repository:reference``."""
        status, headers, body = self.get(f"/v2/{repository}/manifests/{reference}",
                                         headers={"Accept": MANIFEST_TYPES})
        if status != 200:
            raise AssertionError(f"registry {self.host} has no {repository}:{reference}"
                                 f" ({status}: {body[:300]!r})")
        return headers["docker-content-digest"]

    def tags(self, repository: str) -> list[str]:
        """The tags the registry holds for ``repository`` (empty when it has none)."""
        status, _, body = self.get(f"/v2/{repository}/tags/list")
        if status == 404:
            return []
        if status != 200:
            raise AssertionError(f"registry {self.host} answered {status}: {body[:300]!r}")
        tags: list[str] = json.loads(body).get("tags") or []
        return tags

    def stop(self) -> None:
        self.server.stop()


def htpasswd_line(username: str, password: str) -> str:
    """``htpasswd -Bbn USER PASSWORD``: one bcrypt line (the registry accepts no other hash)."""
    program = require_program("htpasswd", INSTALL_HINT)
    done = subprocess.run([program, "-Bbn", username, password], capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


def registry_config(root: Path, port: int, auth: tuple[str, str] | None) -> dict[str, object]:
    """A ``registry:2`` configuration: filesystem storage under ``root``, deletes allowed,
    quiet logs, loopback only, and htpasswd auth when ``auth`` is given."""
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")},
                    "delete": {"enabled": True}},
        "http": {"addr": f"{LOOPBACK}:{port}", "secret": uuid.uuid4().hex},
    }
    if auth is not None:
        (root / "htpasswd").write_text(htpasswd_line(*auth) + "\n")
        config["auth"] = {"htpasswd": {"realm": "mldock-test", "path": str(root / "htpasswd")}}
    return config


def start_registry(processes: ProcessSet, root: Path,
                   auth: tuple[str, str] | None = None) -> LocalRegistry:
    """Start a registry storing its data under ``root``; ``auth=(user, password)`` requires
    those credentials for every request (pull and push)."""
    program = require_program("docker-registry", INSTALL_HINT)
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    port = free_port()
    config = root / "config.yml"
    # YAML is a superset of JSON: no YAML library needed to write the configuration
    config.write_text(json.dumps(registry_config(root, port, auth), indent=1))
    server = processes.start("docker-registry", [program, "serve", str(config)], port=port,
                             health_url=f"http://{LOOPBACK}:{port}/v2/")
    return LocalRegistry(server, root, auth)
