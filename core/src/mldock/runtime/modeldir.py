"""Where the model to serve lives on each platform, and its root (the folder with the manifest).

SageMaker extracts ``model.tar.gz`` into ``/opt/ml/model``; Azure ML mounts ``AZUREML_MODEL_DIR``
with the registered folder one level down (its local endpoint even writes ``…/azureml-models//
<name>/<version>``, a double slash a ``Path`` absorbs); Vertex AI does not mount a ``gs://``
``AIP_STORAGE_URI``, so the model is downloaded with :mod:`mldock.runtime.gcs` (stdlib only),
while Vertex's own local mode (``LocalModel.deploy_to_local_endpoint``) gives a local path there;
locally ``MLDOCK_MODEL_DIR`` names it. In every case the model root is
the shallowest folder holding ``mldock-model.json`` (or the base folder when none does).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from mldock.runtime import MANIFEST_NAME, gcs
from mldock.runtime.names import ENV_MODEL_DIR
from mldock.runtime.platform import AZUREML, VERTEX, gcs_root, opt_ml

MAX_DEPTH = 4


class ModelDirError(RuntimeError):
    """The model directory cannot be found or fetched; the message says what to do."""


def find_model_root(base: Path, max_depth: int = MAX_DEPTH) -> Path | None:
    """The shallowest directory under ``base`` (breadth first, sorted) holding the manifest."""
    level = [base]
    for _ in range(max_depth + 1):
        next_level: list[Path] = []
        for directory in level:
            if (directory / MANIFEST_NAME).is_file():
                return directory
            try:
                next_level.extend(sorted(p for p in directory.iterdir() if p.is_dir()))
            except OSError:
                continue
        level = next_level
    return None


def model_source(platform: str, env: Mapping[str, str] | None = None) -> str:
    """The path or ``gs://`` URI the model comes from (``MLDOCK_MODEL_DIR`` wins everywhere)."""
    env = os.environ if env is None else env
    if env.get(ENV_MODEL_DIR):
        return env[ENV_MODEL_DIR]
    if platform == VERTEX and env.get("AIP_STORAGE_URI"):
        return env["AIP_STORAGE_URI"]
    if platform == AZUREML and env.get("AZUREML_MODEL_DIR"):
        return env["AZUREML_MODEL_DIR"]
    return str(opt_ml(env) / "model")


def materialize(source: str, env: Mapping[str, str] | None = None) -> Path:
    """A local directory holding the model (downloading gs:// sources), then its root."""
    env = os.environ if env is None else env
    if gcs.is_gs(source):
        base = gcs.mounted_path(source, gcs_root(env))
        if base is None:
            cache = Path(env.get("MLDOCK_MODEL_CACHE")
                         or Path(tempfile.gettempdir()) / "mldock" / "model")
            key = hashlib.sha256(source.encode()).hexdigest()[:12]
            try:
                base = gcs.download(source, cache / key, env)
            except gcs.GcsError as exc:
                raise ModelDirError(str(exc)) from None
    else:
        base = Path(source)
    if not base.is_dir():
        raise ModelDirError(f"model directory {base} does not exist (set MLDOCK_MODEL_DIR, or mount"
                            " the trained model there)")
    return find_model_root(base) or base
