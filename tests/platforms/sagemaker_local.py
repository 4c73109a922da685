"""What both SageMaker SDK tests need around the SDK: its environment, a port, and clean-up.

Local mode shells out to ``docker-compose`` with a compose file written under the session's
``container_root``; compose names the project after that file's folder (a random temp name) and
labels every container and network with it. Clean-up therefore removes only containers started
from the session's own image and networks whose compose project is one of those folders, never the
fixed ``sagemaker-local`` network a developer's own local-mode run may be using.
"""

from __future__ import annotations

import json
import re
import socket
import tarfile
from pathlib import Path

PROJECT_LABEL = "com.docker.compose.project"

# SchemaVersion is required by SDK 2.x (it raises without it); telemetry would try to reach AWS.
USER_CONFIG = """\
SchemaVersion: "1.0"
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
"""


def sdk_env(work: Path) -> dict[str, str]:
    """Variables for a driver: a region (LocalSession raises without one), no EC2 metadata probe
    (it would hang for seconds off AWS), the SDK config above, and a HOME of the test's own."""
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    config = work / "sagemaker-config.yaml"
    config.write_text(USER_CONFIG)
    return {"AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
            "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config), "HOME": str(home)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_spec(work: Path, **spec: object) -> Path:
    path = work / "spec.json"
    path.write_text(json.dumps({"work_dir": str(work), **spec}))
    return path


def compose_projects(container_root: Path) -> set[str]:
    """Compose v1's project names for the compose files under ``container_root``."""
    names = {path.parent.name for path in container_root.rglob("docker-compose.yaml")}
    return {re.sub(r"[^a-z0-9]", "", name.lower()) for name in names}


def remove_leftovers(engine, image: str, container_root: Path) -> list[str]:
    """Remove the containers the SDK started from ``image`` and the compose networks it made.

    Returns the names of what was removed (for the test log).
    """
    removed: list[str] = []
    projects = compose_projects(container_root)
    image_id = engine.images.get(image).id
    for container in engine.containers.list(all=True):
        labels = container.labels or {}
        if container.attrs.get("Image") == image_id or labels.get(PROJECT_LABEL) in projects:
            projects.add(labels.get(PROJECT_LABEL, ""))
            container.remove(force=True)
            removed.append(container.name)
    for network in engine.networks.list(filters={"label": PROJECT_LABEL}):
        if network.attrs.get("Labels", {}).get(PROJECT_LABEL) in projects - {""}:
            network.reload()
            if not network.attrs.get("Containers"):
                network.remove()
                removed.append(f"network {network.name}")
    return removed


def sdk_containers(engine, image: str) -> list[str]:
    """Names of containers (running or not) started from ``image``: empty after clean-up."""
    image_id = engine.images.get(image).id
    return [c.name for c in engine.containers.list(all=True) if c.attrs.get("Image") == image_id]


def model_tar(uri: str) -> dict[str, bytes]:
    """``{member name: bytes}`` of the regular files in a local ``model.tar.gz`` (``file://``)."""
    path = Path(uri.removeprefix("file://"))
    if path.is_dir():
        path = path / "model.tar.gz"
    with tarfile.open(path) as tar:
        return {m.name.removeprefix("./"): tar.extractfile(m).read()
                for m in tar.getmembers() if m.isfile()}

