"""TrainingContext: what ``train(ctx)`` sees, the same on every platform.

:func:`build_context` reads whichever platform's environment it finds (CONTAINER-CONTRACT.md,
"Training") and hands user code typed hyperparameters, input channel directories, output
directories (created), cluster facts, metric logging and stop callbacks.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mldock.runtime import cluster as _cluster
from mldock.runtime import gcs
from mldock.runtime import hyperparameters as hp
from mldock.runtime.names import (
    ENV_CHECKPOINT_DIR,
    ENV_HYPERPARAMETERS,
    ENV_MODEL_DIR,
    ENV_OUTPUT_DIR,
    ENV_RUN_ID,
    METRIC_LINE_PREFIX,
    METRICS_FILE_NAME,
)
from mldock.runtime.platform import AZUREML, LOCAL, SAGEMAKER, VERTEX, gcs_root, opt_ml

VERTEX_CHANNELS = {"AIP_TRAINING_DATA_URI": "train", "AIP_VALIDATION_DATA_URI": "validation",
                   "AIP_TEST_DATA_URI": "test"}


@dataclass
class TrainingContext:
    """Everything a training function needs, independent of the platform running it."""

    platform: str
    job_id: str
    run_id: str
    hyperparameters: dict[str, Any]
    channels: dict[str, Path]
    model_dir: Path
    output_dir: Path
    checkpoint_dir: Path
    hosts: list[str] = field(default_factory=list)
    current_host: str = ""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    master_addr: str = ""
    master_port: int | None = None
    metrics_file: Path | None = None
    # where the platform publishes the model from; differs from model_dir on non-primary hosts
    published_model_dir: Path | None = None
    # local staging dirs to copy to gs:// when training succeeds: (local dir, uri)
    uploads: list[tuple[Path, str]] = field(default_factory=list, repr=False)
    _stop_callbacks: list[Callable[[], Any]] = field(default_factory=list, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _metrics_handle: IO[str] | None = field(default=None, repr=False)
    # a tuning trial's objective, also handed to the platform's tuner (runtime.objective)
    objective: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for directory in (self.model_dir, self.output_dir, self.checkpoint_dir):
            directory.mkdir(parents=True, exist_ok=True)
        if self.metrics_file is None:
            self.metrics_file = self.output_dir / METRICS_FILE_NAME

    @property
    def is_primary(self) -> bool:
        """True on the one host (rank 0) whose model is published; save the model only there.

        On other hosts ``model_dir`` is a scratch folder that is never uploaded, so saving there
        is harmless but wasted work: ``if ctx.is_primary: save(model, ctx.model_dir)``.
        """
        return self.rank == 0

    @property
    def is_master(self) -> bool:
        """The same as :attr:`is_primary` (the name PyTorch's launchers use)."""
        return self.is_primary

    def param(self, name: str, default: Any = None) -> Any:
        """A hyperparameter by name (``learning-rate`` and ``learning_rate`` are the same)."""
        for key in (name, name.replace("-", "_"), name.replace("_", "-")):
            if key in self.hyperparameters:
                return self.hyperparameters[key]
        return default

    def input_dir(self, name: str) -> Path:
        """The directory holding channel ``name``'s files (the parent, if a file was given)."""
        try:
            path = self.channels[name]
        except KeyError:
            known = ", ".join(sorted(self.channels)) or "none"
            raise KeyError(f"no input channel {name!r} (channels: {known})") from None
        return path.parent if path.is_file() else path

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Record one metric: a JSON line in the metrics file, a ``mldock-metric`` stdout line."""
        if not isinstance(key, str) or not key or any(c.isspace() or c == "=" for c in key):
            raise ValueError(f"metric key must be a non-empty word without spaces or '=': {key!r}")
        number = value if isinstance(value, int) and not isinstance(value, bool) else float(value)
        step = None if step is None else int(step)
        line = json.dumps({"key": key, "value": number, "step": step, "timestamp": time.time()})
        with self._lock:
            if self._metrics_handle is None:
                if self.metrics_file is None:  # checked above; this narrows the type
                    raise RuntimeError("no metrics file")
                self.metrics_file.parent.mkdir(parents=True, exist_ok=True)
                self._metrics_handle = self.metrics_file.open("a", encoding="utf-8", buffering=1)
            self._metrics_handle.write(line + "\n")
            self._metrics_handle.flush()
            suffix = "" if step is None else f" step={step}"
            sys.stdout.write(f"{METRIC_LINE_PREFIX} {key}={number}{suffix}\n")
            sys.stdout.flush()
            if self.objective is not None and key == self.objective.key:
                self.objective.report(number, step)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def on_stop(self, callback: Callable[[], Any]) -> Callable[[], Any]:
        """Register ``callback`` to run on SIGTERM (save a checkpoint); usable as a decorator."""
        self._stop_callbacks.append(callback)
        return callback

    @property
    def stop_callbacks(self) -> tuple[Callable[[], Any], ...]:
        return tuple(self._stop_callbacks)

    def close(self) -> None:
        with self._lock:
            if self.objective is not None:  # the last objective reaches the tuner first
                self.objective.close()
                self.objective = None
            if self._metrics_handle is not None:
                self._metrics_handle.close()
                self._metrics_handle = None


# --- building one per platform -------------------------------------------------------------

def _new_job_id(prefix: str) -> str:
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"


def _staging(env: Mapping[str, str], *parts: str) -> Path:
    base = Path(env.get("MLDOCK_STAGING_DIR") or Path(tempfile.gettempdir()) / "mldock")
    return base.joinpath(*parts)


def _input_location(value: str, name: str, env: Mapping[str, str]) -> Path:
    """A channel given as a path or gs:// URI (wildcards allowed) as a local path."""
    if not gcs.is_gs(value):
        return Path(value)
    if any(ch in value for ch in "*?["):
        value = value.rsplit("/", 1)[0]
    mounted = gcs.mounted_path(value, gcs_root(env))
    if mounted is not None:
        return mounted
    return gcs.download(value, _staging(env, "inputs", name), env)


def _output_location(value: str, name: str, env: Mapping[str, str],
                     uploads: list[tuple[Path, str]]) -> Path:
    """An output given as a path or gs:// URI: the mount, or a staging dir uploaded at the end."""
    if not gcs.is_gs(value):
        return Path(value)
    mounted = gcs.mounted_path(value, gcs_root(env))
    if mounted is not None:
        return mounted
    local = _staging(env, "outputs", name)
    uploads.append((local, value))
    return local


def _channels_from(reserved: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Path]:
    channels: dict[str, Path] = {}
    for key, value in reserved.items():
        if key.startswith(("input-", "input_")):
            name = key[len("input-"):]
            channels[name] = _input_location(str(value), name, env)
    return channels


def _dir_arg(reserved: Mapping[str, Any], name: str) -> str | None:
    value = reserved.get(name) or reserved.get(name.replace("-", "_"))
    return None if value is None else str(value)


def every_host_writes_model(env: Mapping[str, str]) -> bool:
    """``MLDOCK_MODEL_ON_EVERY_HOST=1`` turns the primary-only guard off (sharded savers)."""
    return (env.get("MLDOCK_MODEL_ON_EVERY_HOST") or "").strip().lower() in ("1", "true", "yes")


def _primary_only_model(model: Path, uploads: list[tuple[Path, str]], rank: int,
                        env: Mapping[str, str]) -> tuple[Path, list[tuple[Path, str]]]:
    """On a non-primary host, the model folder user code sees is a scratch folder nobody publishes.

    Why a redirect rather than emptying the real folder after training: on Vertex AI
    (``AIP_MODEL_DIR`` on the ``/gcs`` mount) and Azure ML (a mounted output) every host shares
    one model folder, so deleting a non-primary host's files would delete the primary's model.
    On SageMaker each host uploads its own ``/opt/ml/model`` and the uploads are merged, so the
    runtime also empties that folder on non-primaries after training (:mod:`train`), in case
    code wrote to ``/opt/ml/model`` directly.
    """
    if rank == 0 or every_host_writes_model(env):
        return model, uploads
    scratch = _staging(env, f"model-rank{rank}")
    shutil.rmtree(scratch, ignore_errors=True)
    return scratch, [(local, uri) for local, uri in uploads if local != model]


@dataclass
class _Layout:
    """Where one platform puts the job's folders, before ``--*-dir`` arguments override them."""

    model: Path
    output: Path
    checkpoints: Path
    job_id: str
    cluster: _cluster.Cluster
    channels: dict[str, Path] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


def _sagemaker_layout(env: Mapping[str, str], uploads: list[tuple[Path, str]]) -> _Layout:
    root = opt_ml(env)
    config = root / "input" / "config"
    data_dir = root / "input" / "data"
    channels: dict[str, Path] = {}
    if data_dir.is_dir():
        channels.update({p.name: p for p in sorted(data_dir.iterdir()) if p.is_dir()})
    if (config / "inputdataconfig.json").is_file():
        declared = json.loads((config / "inputdataconfig.json").read_text(encoding="utf-8"))
        channels.update({name: data_dir / name for name in declared if name not in channels})
    arn = env.get("TRAINING_JOB_ARN", "")
    return _Layout(
        model=root / "model", output=root / "output" / "data", checkpoints=root / "checkpoints",
        job_id=env.get("TRAINING_JOB_NAME") or arn.rsplit("/", 1)[-1] or _new_job_id("sagemaker"),
        cluster=_cluster.from_sagemaker(config / "resourceconfig.json"), channels=channels,
        params=hp.read_sagemaker(config / "hyperparameters.json"))


def _vertex_layout(env: Mapping[str, str], uploads: list[tuple[Path, str]]) -> _Layout:
    channels = {name: _input_location(env[var], name, env)
                for var, name in VERTEX_CHANNELS.items() if env.get(var)}
    model_uri = env.get("AIP_MODEL_DIR")
    base = model_uri.rstrip("/").rsplit("/", 1)[0] if model_uri else None
    model = _output_location(model_uri, "model", env, uploads) if model_uri \
        else _staging(env, "model")
    output = _output_location(f"{base}/output", "output", env, uploads) if base \
        else _staging(env, "output")
    ckpt = env.get("AIP_CHECKPOINT_DIR")
    checkpoints = _output_location(ckpt, "checkpoints", env, uploads) if ckpt \
        else _staging(env, "checkpoints")
    return _Layout(model=model, output=output, checkpoints=checkpoints,
                   job_id=env.get("CLOUD_ML_JOB_ID") or _new_job_id("vertex"),
                   cluster=_cluster.from_vertex(env), channels=channels)


def _azureml_layout(env: Mapping[str, str], uploads: list[tuple[Path, str]]) -> _Layout:
    outputs = Path("outputs").resolve()
    return _Layout(model=outputs / "model", output=outputs, checkpoints=outputs / "checkpoints",
                   job_id=env.get("AZUREML_RUN_ID") or _new_job_id("azureml"),
                   cluster=_cluster.from_azureml(env))


def _local_layout(env: Mapping[str, str], uploads: list[tuple[Path, str]]) -> _Layout:
    channels: dict[str, Path] = {}
    for key, value in sorted(env.items()):
        if key.startswith("MLDOCK_INPUT_") and value:
            name = key[len("MLDOCK_INPUT_"):].lower()
            channels[name] = _input_location(value, name, env)
    base_dir = Path("mldock-output").resolve()
    return _Layout(
        model=Path(env.get(ENV_MODEL_DIR) or base_dir / "model"),
        output=Path(env.get(ENV_OUTPUT_DIR) or base_dir / "output"),
        checkpoints=Path(env.get(ENV_CHECKPOINT_DIR) or base_dir / "checkpoints"),
        job_id=env.get("MLDOCK_JOB_ID") or _new_job_id("local"), cluster=_cluster.single_host(),
        channels=channels)


_LAYOUTS: dict[str, Callable[[Mapping[str, str], list[tuple[Path, str]]], _Layout]] = {
    SAGEMAKER: _sagemaker_layout, VERTEX: _vertex_layout, AZUREML: _azureml_layout,
    LOCAL: _local_layout,
}


def build_context(argv: Sequence[str] = (), env: Mapping[str, str] | None = None,
                  platform: str | None = None) -> TrainingContext:
    """A context for ``platform`` (detected when None) from ``argv`` (after ``train``) and ``env``.

    Directory arguments work everywhere and win over the platform's defaults:
    ``--input-<channel>=PATH|gs://…``, ``--model-dir=``, ``--output-dir=``, ``--checkpoint-dir=``.
    Every other ``--k=v`` argument is a hyperparameter.
    """
    from mldock.runtime.objective import objective_reporter
    from mldock.runtime.platform import detect_training_platform

    env = os.environ if env is None else env
    platform = platform or detect_training_platform(env)
    if platform not in _LAYOUTS:
        raise ValueError(f"unknown platform {platform!r}")
    reserved, arg_params = hp.split_reserved(hp.parse_arguments(argv))
    params = hp.read_env_json(env.get(ENV_HYPERPARAMETERS))
    uploads: list[tuple[Path, str]] = []
    layout = _LAYOUTS[platform](env, uploads)
    params.update(layout.params)
    params.update(arg_params)
    channels = layout.channels
    channels.update(_channels_from(reserved, env))
    model, output, checkpoints = layout.model, layout.output, layout.checkpoints
    if model_arg := _dir_arg(reserved, "model-dir"):
        model = _output_location(model_arg, "model", env, uploads)
    if output_arg := _dir_arg(reserved, "output-dir"):
        output = _output_location(output_arg, "output", env, uploads)
    if checkpoint_arg := _dir_arg(reserved, "checkpoint-dir"):
        checkpoints = _output_location(checkpoint_arg, "checkpoints", env, uploads)
    cluster = layout.cluster
    published = Path(model)
    model, uploads = _primary_only_model(Path(model), uploads, cluster.rank, env)
    metrics = env.get("MLDOCK_METRICS_FILE")
    return TrainingContext(
        platform=platform, job_id=layout.job_id, run_id=env.get(ENV_RUN_ID) or layout.job_id,
        hyperparameters=params, channels=channels, model_dir=model, published_model_dir=published,
        output_dir=Path(output), checkpoint_dir=Path(checkpoints),
        hosts=list(cluster.hosts), current_host=cluster.current_host, rank=cluster.rank,
        world_size=cluster.world_size, local_rank=cluster.local_rank,
        master_addr=cluster.master_addr, master_port=cluster.master_port,
        metrics_file=Path(metrics) if metrics else None, uploads=uploads,
        objective=objective_reporter(platform, env) if cluster.rank == 0 else None)
