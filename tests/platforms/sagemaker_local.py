"""What both SageMaker SDK tests need around the SDK: its environment, a port, and clean-up.

Local mode shells out to ``docker-compose`` with a compose file written under the session's
``container_root``; compose names the project after that file's folder (a random temp name) and
labels every container and network with it. Clean-up therefore removes only containers started
from the session's own image, and networks labelled with one of those projects and left unused:
the fixed-name ``sagemaker-local`` network goes only when this run created it, never when a
developer's own local-mode run made it first.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import tarfile
import tomllib
from collections.abc import Callable
from pathlib import Path

PROJECT_LABEL = "com.docker.compose.project"
MANIFEST = "mldock-model.json"

# SDK 2.x validates this file against a schema that requires SchemaVersion and raises without it
# (aws/sagemaker-python-sdk#4394, still so in 2.257); telemetry would try to reach AWS.
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
    # ignore_removed: the engine is shared, another run's container may go while we list.
    for container in engine.containers.list(all=True, ignore_removed=True):
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
    return [c.name for c in engine.containers.list(all=True, ignore_removed=True)
            if c.attrs.get("Image") == image_id]


def model_tar(uri: str) -> dict[str, bytes]:
    """``{member name: bytes}`` of the regular files in a local ``model.tar.gz`` (``file://``)."""
    path = Path(uri.removeprefix("file://"))
    if path.is_dir():
        path = path / "model.tar.gz"
    with tarfile.open(path) as tar:
        return {m.name.removeprefix("./"): tar.extractfile(m).read()
                for m in tar.getmembers() if m.isfile()}


def run_sdk(project, engine, python: Path, run_driver: Callable[..., dict], driver: str,
            work: Path, **spec: object) -> dict:
    """Run ``drivers/<driver>.py`` on ``spec``; always remove what the SDK left, and ``work``.

    The result gains ``files``: the model.tar.gz's members, read before its folder is removed.
    """
    work.mkdir()
    spec_file = write_spec(work, image=project.image, data_dir=str(project.folder / "data"),
                           payload=project.payload, serving_port=free_port(), **spec)
    try:
        result = run_driver(python, driver, str(spec_file), env=sdk_env(work), timeout=900)
        result["files"] = model_tar(result["model_data"])
        return result
    finally:
        remove_leftovers(engine, project.image, work / "containers")
        assert sdk_containers(engine, project.image) == []
        shutil.rmtree(work, ignore_errors=True)


def project_hyperparameters(project) -> dict:
    """The ``[hyperparameters]`` of the project's ``mldock.toml``: what ``mldock train`` used."""
    config = tomllib.loads((project.folder / "mldock.toml").read_text())
    return dict(config["hyperparameters"])


def predictions(answer: object) -> object:
    """The server answers ``{"predictions": [...]}`` to ``{"instances": [...]}``."""
    return answer["predictions"] if isinstance(answer, dict) else answer


def check_model(files: dict[str, bytes]) -> dict:
    """The model.tar.gz holds the manifest and exactly the files it lists, unaltered: the
    manifest, written by the SageMaker training job, is returned."""
    assert MANIFEST in files, sorted(files)
    manifest = json.loads(files[MANIFEST])
    assert manifest["platform"] == "sagemaker"
    listed = {name: hashlib.sha256(files[name]).hexdigest() for name in files if name != MANIFEST}
    assert listed == manifest["files"]
    return manifest


def exported_manifest(project) -> dict:
    """The manifest of the model ``mldock train`` made (exported with ``mldock runs export``)."""
    return json.loads((project.model_dir / MANIFEST).read_text())
