"""A real mldock image and a model trained in it, for the serving and batch tests on the fake.

The ``minimal`` template (standard library only: a fitted line, no package index needed) is
rendered, built and trained locally with the real CLI; the tests then serve that image and model
on the Vertex fake and check every prediction against the fitted line.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MLDOCK = str(Path(sys.executable).parent / "mldock")


@dataclass(frozen=True)
class TrainedModel:
    """The image (a local tag), the run and its model folder, and the line it fitted."""

    image: str
    run_id: str
    model_dir: Path
    slope: float
    intercept: float

    def predict(self, values: list[float]) -> list[float]:
        return [self.slope * x + self.intercept for x in values]


def _mldock(*args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLDOCK_") or k == "MLDOCK_REQUIRE_DOCKER"}
    done = subprocess.run([MLDOCK, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900, env=env, check=False)
    assert done.returncode == 0, f"mldock {' '.join(args)}: {done.stderr[-3000:]}"
    return done.stdout


def build_and_train(root: Path, prefix: str) -> TrainedModel:
    """Render ``<prefix>-<hex>``, ``mldock build`` and ``mldock train`` it; the trained model."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    _mldock("init", name, "--template", "minimal", "--no-input", cwd=root)
    folder = root / name
    image = json.loads(_mldock("build", "--json", cwd=folder))["tag"]
    run_id = _mldock("train", "--quiet", cwd=folder).strip().splitlines()[-1]
    model_dir = folder / ".mldock" / "runs" / run_id / "opt_ml" / "model"
    fitted = json.loads((model_dir / "model.json").read_text())
    return TrainedModel(image, run_id, model_dir, float(fitted["slope"]),
                        float(fitted["intercept"]))


def remove_image(client: Any, image: str) -> None:
    """Remove every tag of ``image``'s repository (the build tags ``latest`` too); layers stay."""
    from docker.errors import APIError, ImageNotFound

    repository = image.rsplit(":", 1)[0]
    for found in client.images.list(name=repository):
        for tag in found.tags:
            if tag.rsplit(":", 1)[0] == repository:
                with contextlib.suppress(ImageNotFound, APIError):
                    client.images.remove(tag, noprune=True)
