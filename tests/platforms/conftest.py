"""The image `mldock build` makes, run by each platform's own SDK in local mode.

One sklearn project (uniquely named, so a developer's own ``iris`` is never touched) is rendered,
built and trained once per session with the real ``mldock`` CLI; its model is exported to a plain
folder, and ``mldock deploy`` + ``mldock predict`` give the predictions every SDK must reproduce.
Each SDK runs in its own venv (:mod:`sdkenv`) through a driver script, never imported here.

Clean-up removes only what this session made: containers labelled with the project's name, any
container started from the session's image (the SDKs name theirs), and the image's tags.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mldock.testing.docker import require_docker, unavailable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sdkenv

MLDOCK = str(Path(sys.executable).parent / "mldock")
PAYLOAD = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]}


def mldock(*args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the real ``mldock`` console script; raise with its output when it fails."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLDOCK_") or k == "MLDOCK_REQUIRE_DOCKER"}
    result = subprocess.run([MLDOCK, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, env=env, check=False)
    if result.returncode != 0:
        raise AssertionError(f"mldock {' '.join(args)} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}")
    return result


@dataclass(frozen=True)
class PlatformProject:
    """A built and trained project, ready to hand to an SDK.

    Attributes:
        name: the unique project name (also the image repository).
        folder: the project folder.
        image: the exact tag ``mldock build`` printed.
        run_id: the run ``mldock train`` made in the image.
        model_dir: the run's model exported to a plain folder (``mldock runs export``).
        payload: the request body every SDK sends (``{"instances": [...]}``).
        expected: the ``predictions`` list ``mldock predict`` answered for ``payload``.
    """

    name: str
    folder: Path
    image: str
    run_id: str
    model_dir: Path
    payload: dict
    expected: list


@pytest.fixture(scope="session")
def engine():
    client = require_docker()
    yield client
    client.close()


@pytest.fixture(scope="session")
def platform_project(engine, tmp_path_factory) -> Iterator[PlatformProject]:
    """The sklearn template built, trained in its image, exported and served once by mldock."""
    root = tmp_path_factory.mktemp("platforms")
    name = f"sdk-{uuid.uuid4().hex[:8]}"
    mldock("init", name, "--template", "sklearn", "--no-input", cwd=root)
    folder = root / name
    try:
        image = mldock("build", cwd=folder).stdout.strip().splitlines()[-1]
        run_id = mldock("train", cwd=folder).stdout.strip().splitlines()[-1]
        model_dir = root / "model"
        mldock("runs", "export", run_id, str(model_dir), cwd=folder)
        (folder / "payload.json").write_text(json.dumps(PAYLOAD))
        mldock("deploy", "--run", run_id, cwd=folder)
        try:
            answer = json.loads(mldock("predict", "--data", "payload.json", cwd=folder).stdout)
        finally:
            mldock("undeploy", cwd=folder)
        expected = answer["predictions"] if isinstance(answer, dict) else answer
        yield PlatformProject(name, folder, image, run_id, model_dir, PAYLOAD, expected)
    finally:
        _remove_session_objects(engine, name)


def _remove_session_objects(engine, name: str) -> None:
    """Containers labelled with or started from this session's project, then its image tags."""
    images = {tag for image in engine.images.list(name=name) for tag in image.tags}
    image_ids = {image.id for image in engine.images.list(name=name)}
    for container in engine.containers.list(all=True, ignore_removed=True):
        labelled = container.labels.get("mldock.project") == name
        if labelled or container.attrs.get("Image") in image_ids:
            container.remove(force=True)
    for tag in sorted(images):
        # an image with two tags goes with the last: the other removals find nothing
        with contextlib.suppress(Exception):
            engine.images.remove(tag, noprune=True)


@pytest.fixture(scope="session")
def sdk_python() -> Callable[[str], Path]:
    """``sdk_python("sagemaker-v2")``: the interpreter of that SDK's own venv (made on first use).

    A venv that cannot be made is a skip with the reason on a laptop and a failure in CI
    (``MLDOCK_REQUIRE_DOCKER=1``): these tests are the proof that the image is portable.
    """
    def get(name: str) -> Path:
        try:
            return sdkenv.ensure_env(name)
        except sdkenv.SdkEnvError as exc:
            unavailable(f"cannot make the {name} SDK environment: {exc}")
    return get


@pytest.fixture(scope="session")
def run_driver() -> Callable[..., dict]:
    """``run_driver(python, "vertex_local", *args, env={...})`` → the driver's JSON result."""
    return sdkenv.run_driver


@pytest.fixture(scope="session")
def docker_compose() -> str:
    """The ``docker-compose`` binary SageMaker local mode shells out to (Debian's v1.29)."""
    found = shutil.which("docker-compose")
    if not found:
        unavailable("docker-compose is not installed (apt-get install docker-compose); "
                    "SageMaker local mode needs it")
    return found
