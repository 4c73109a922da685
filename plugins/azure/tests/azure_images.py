"""The minimal template's image, rendered and built by the real CLI, and a trained model of it
in the workspace's datastore: what the serving and batch tests run on the fake's engine.

The model is written by hand (``y = slope * x + intercept``, the template's own model format and
manifest) so a test can make several distinct models without training each one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mldock.runtime.manifest import write_manifest
from mldock.testing.docker import require_docker

MLDOCK = str(Path(sys.executable).parent / "mldock")
DATASTORE = "workspaceblobstore"


@dataclass(frozen=True)
class BuiltImage:
    project: str
    tag: str
    predictor: str


def cli_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith("MLDOCK_") or k == "MLDOCK_REQUIRE_DOCKER"}


def build_minimal(root: Path, project: str) -> BuiltImage:
    subprocess.run([MLDOCK, "init", project, "--template", "minimal", "--no-input"], cwd=root,
                   check=True, capture_output=True, env=cli_env(), timeout=300)
    folder = root / project
    done = subprocess.run([MLDOCK, "build", "--json"], cwd=folder, capture_output=True,
                          text=True, env=cli_env(), timeout=1200, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    predictor = tomllib.loads((folder / "mldock.toml").read_text())["project"]["predictor"]
    return BuiltImage(project, json.loads(done.stdout)["tag"], predictor)


def remove_image(client: Any, built: BuiltImage) -> None:
    """Only this build's tags (``mldock build`` tags ``:latest`` too); layers stay as cache.
    Forced: a deployment container of the fake may still run it (the fake removes its
    containers when the session ends); a forced removal of a tag only untags."""
    for name in (built.tag, f"{built.project}:latest"):
        client.images.remove(name, force=True, noprune=True)


def engine() -> Any:
    return require_docker()


def upload_model(container: Any, built: BuiltImage, folder: Path, *, slope: float,
                 intercept: float, broken: bool = False) -> str:
    """A model folder uploaded under ``models/<random>/``; its ``azureml://`` datastore path.
    ``broken``: the manifest without the weights file, so the model fails to load."""
    folder.mkdir(parents=True)
    (folder / "model.json").write_text(json.dumps({"feature": "x", "slope": slope,
                                                   "intercept": intercept}))
    write_manifest(folder, predictor=built.predictor, run_id="r1")
    if broken:
        (folder / "model.json").unlink()
    prefix = f"models/{uuid.uuid4().hex[:10]}"
    for path in folder.iterdir():
        container.upload_blob(f"{prefix}/{path.name}", path.read_bytes(), overwrite=True)
    return f"azureml://datastores/{DATASTORE}/paths/{prefix}/"
