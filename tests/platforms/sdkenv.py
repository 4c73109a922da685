"""Isolated virtual environments for the platforms' own SDKs (SageMaker, Vertex AI, Azure ML).

Each SDK pins versions that clash with each other and with the workspace, so each one lives in its
own venv, made with uv from ``requirements/<name>.txt`` and reused while that file is unchanged
(the folder name carries a hash of it). The tests never import an SDK: they run a small driver
script under the SDK's interpreter (:func:`run_driver`), which is also how a user would run it.

Where the venvs live: ``$MLDOCK_SDK_ENVS`` or ``~/.cache/mldock/sdk-envs``. Creation is guarded by
a file lock, so two pytest processes never build the same venv at once, and a venv is only used
once its ``.complete`` marker exists (an interrupted install is rebuilt, never half-used).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements"
DRIVERS = HERE / "drivers"
COMPLETE = ".complete"


class SdkEnvError(RuntimeError):
    """The SDK's venv could not be made (no uv, no index, a broken pin); the message says which."""


def envs_root() -> Path:
    return Path(os.environ.get("MLDOCK_SDK_ENVS") or Path.home() / ".cache" / "mldock" / "sdk-envs")


def requirements_file(name: str) -> Path:
    path = REQUIREMENTS / f"{name}.txt"
    if not path.is_file():
        raise SdkEnvError(f"no requirements file {path}")
    return path


def env_dir(name: str) -> Path:
    """``<root>/<name>-<12 hex of the requirements file>``: a changed pin makes a new venv."""
    digest = hashlib.sha256(requirements_file(name).read_bytes()).hexdigest()[:12]
    return envs_root() / f"{name}-{digest}"


def _uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(found).exists():
        raise SdkEnvError("uv is not on PATH: install it (python3 -m pip install uv)")
    return found


def _run(args: list[str], log: Path) -> None:
    with log.open("ab") as out:
        result = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, timeout=1800,
                                check=False)
    if result.returncode != 0:
        tail = log.read_text("utf-8", "replace")[-2000:]
        raise SdkEnvError(f"{' '.join(args[:3])} … exited {result.returncode}:\n{tail}")


def ensure_env(name: str) -> Path:
    """The interpreter of the ``name`` SDK venv, creating the venv first if needed."""
    target = env_dir(name)
    python = target / "bin" / "python"
    if (target / COMPLETE).is_file():
        return python
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f".{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / COMPLETE).is_file():  # another process made it while we waited
            return python
        if target.exists():
            shutil.rmtree(target)
        uv = _uv()
        log = target.parent / f"{target.name}.log"
        log.write_text("")
        interpreter = os.environ.get("MLDOCK_SDK_PYTHON") or sys.executable
        _run([uv, "venv", "--quiet", "--python", interpreter, str(target)], log)
        env_vars = {**os.environ, "UV_COMPILE_BYTECODE": "1"}
        result = subprocess.run([uv, "pip", "install", "--python", str(python),
                                 "-r", str(requirements_file(name))],
                                stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env_vars,
                                timeout=1800, check=False)
        if result.returncode != 0:
            tail = log.read_text("utf-8", "replace")[-2000:]
            raise SdkEnvError(f"installing {name} SDK requirements failed:\n{tail}")
        (target / COMPLETE).write_text(requirements_file(name).read_text("utf-8"))
    return python


def run_driver(python: Path, driver: str, *args: str, env: dict[str, str] | None = None,
               timeout: float = 900, cwd: Path | None = None) -> dict[str, Any]:
    """Run ``drivers/<driver>.py`` under ``python``; return the JSON object on its last stdout line.

    Drivers print progress on stderr and exactly one JSON object as their last stdout line. A
    non-zero exit raises AssertionError with the tail of both streams, so a failing SDK call shows
    the SDK's own message in the test report.
    """
    script = DRIVERS / f"{driver}.py"
    # nothing of this process's own settings: mldock's, a venv's, or a cloud SDK's choice of
    # cloud that another test left behind (azure-ai-ml writes AZUREML_CURRENT_CLOUD itself)
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("MLDOCK_", "VIRTUAL_ENV", "AZUREML_", "ARM_CLOUD"))}
    full_env.update(env or {})
    result = subprocess.run([str(python), str(script), *args], capture_output=True, text=True,
                            timeout=timeout, env=full_env, cwd=cwd, check=False)
    if result.returncode != 0:
        raise AssertionError(f"driver {driver} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-6000:]}")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if not lines:
        raise AssertionError(f"driver {driver} printed nothing\nstderr:\n{result.stderr[-4000:]}")
    return json.loads(lines[-1])
