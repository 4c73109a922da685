"""Fixtures for the in-container runtime: the image layout, a toy project, servers on 127.0.0.1.

Subprocesses run the runtime the way an image does: only ``mldock/__init__.py`` and
``mldock/runtime/`` copied into a folder on ``PYTHONPATH``, and Python started with ``-S`` (no
site-packages), so a test passes only if the runtime needs nothing but the standard library.
"""

from __future__ import annotations

import compileall
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mldock
import pytest
from mldock.testing.processes import free_port

SRC = Path(mldock.__file__).parent

TOY_PREDICTOR = '''
"""A toy predictor: weighted row sums; some payloads make it fail on purpose."""
import json
import os
import time


class Predictor:
    def load(self, model_dir):
        time.sleep(float(os.environ.get("TOY_LOAD_SLEEP", "0")))
        if os.environ.get("TOY_LOAD_FAIL"):
            raise RuntimeError("weights are corrupt")
        self.weight = json.loads((model_dir / "weights.json").read_text())["w"]

    def predict(self, payload, parameters=None):
        scale = (parameters or {}).get("scale", 1)
        if isinstance(payload, dict) and "fail" in payload:
            kind = payload["fail"]
            if kind == "value":
                raise ValueError("feature count must be 2")
            if kind == "key":
                raise KeyError("petal_width")
            raise RuntimeError("internal detail that must not leak")
        if isinstance(payload, dict):  # several v2 inputs
            return {name: [sum(row) * self.weight for row in rows]
                    for name, rows in payload.items()}
        return [sum(row) * self.weight * scale for row in payload]
'''

TOY_TRAIN = '''
"""Toy training functions, one per scenario."""
import json
import os
import time
from pathlib import Path


def train(ctx):
    w = ctx.param("w", 1)
    (ctx.model_dir / "weights.json").write_text(json.dumps({"w": w}))
    rows = (ctx.input_dir("train") / "data.csv").read_text().split()
    ctx.log_metric("rows", len(rows))
    ctx.log_metrics({"loss": 0.5, "accuracy": 0.9}, step=1)
    (ctx.output_dir / "ctx.json").write_text(json.dumps({
        "platform": ctx.platform, "run_id": ctx.run_id, "job_id": ctx.job_id,
        "hyperparameters": ctx.hyperparameters, "rank": ctx.rank, "hosts": ctx.hosts}))


def broken(ctx):
    raise ZeroDivisionError("the loss exploded")


def long_running(ctx):
    @ctx.on_stop
    def save():
        (ctx.checkpoint_dir / "checkpoint.json").write_text(json.dumps({"epoch": 3}))

    (ctx.output_dir / "started").write_text("yes")
    while True:
        time.sleep(0.05)
'''


@pytest.fixture(scope="session")
def image_root(tmp_path_factory) -> Path:
    """A copy of what the builder puts at /opt/mldock: mldock/__init__.py + mldock/runtime/."""
    root = tmp_path_factory.mktemp("opt_mldock")
    (root / "mldock").mkdir()
    shutil.copy2(SRC / "__init__.py", root / "mldock" / "__init__.py")
    shutil.copytree(SRC / "runtime", root / "mldock" / "runtime",
                    ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(root, quiet=1)  # as an image build would; saves each subprocess ~0.1 s
    return root


@pytest.fixture(scope="session")
def toy_src(tmp_path_factory) -> Path:
    """A user project's ``src`` folder with package ``toy`` (predict.py, train.py)."""
    src = tmp_path_factory.mktemp("toy_src")
    (src / "toy").mkdir()
    (src / "toy" / "__init__.py").write_text("")
    (src / "toy" / "predict.py").write_text(textwrap.dedent(TOY_PREDICTOR))
    (src / "toy" / "train.py").write_text(textwrap.dedent(TOY_TRAIN))
    return src


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model")
    (path / "weights.json").write_text('{"w": 2}')
    return path


def runtime_env(image_root: Path, toy_src: Path, **extra: str) -> dict[str, str]:
    """A clean environment for the runtime: no platform variables leak in from the test host."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MLDOCK_", "AIP_", "SAGEMAKER_", "AZUREML_", "CLOUD_ML_",
                                  "TRAINING_JOB_", "CLUSTER_SPEC", "TF_CONFIG", "PYTHON"))}
    env.update(PYTHONPATH=f"{image_root}{os.pathsep}{toy_src}", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def runtime_cmd(*args: str, isolated: bool = True) -> list[str]:
    """``MLDOCK_TEST_RUNTIME_PYTHON`` runs the isolated runtime under another interpreter (the
    image's Python may differ from the host's)."""
    python = os.environ.get("MLDOCK_TEST_RUNTIME_PYTHON", "") if isolated else ""
    return [python or sys.executable, *(["-S"] if isolated else []), "-m", "mldock.runtime",
            *args]


class Server:
    """A runtime server subprocess on 127.0.0.1 and a tiny HTTP client for it."""

    def __init__(self, env: dict[str, str], args: tuple[str, ...] = ("serve",),
                 isolated: bool = True, port_var: str = "MLDOCK_PORT", wait: bool = True):
        self.port = free_port()
        env = {**env, "MLDOCK_HOST": "127.0.0.1", port_var: str(self.port)}
        env.setdefault("MLDOCK_GRACEFUL_TIMEOUT", "5")
        self.proc = subprocess.Popen(runtime_cmd(*args, isolated=isolated), env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if wait:
            self.wait_for("/v2/health/live", 200, timeout=15)

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        if isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def post_json(self, path: str, data: object, **headers: str):
        status, _, body = self.request(
            "POST", path, json.dumps(data), {"Content-Type": "application/json", **headers})
        return status, json.loads(body) if body else None

    def wait_for(self, path: str, status: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: "
                                     f"{self.proc.stderr.read()}")
            try:
                last = self.request("GET", path)[0]
                if last == status:
                    return
            except OSError as exc:
                last = exc
            time.sleep(0.05)
        raise AssertionError(f"{path} did not answer {status} within {timeout}s (last: {last})")

    def stop(self, timeout: float = 10.0) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


@pytest.fixture
def start_server(image_root, toy_src, model_dir):
    """Factory: start a toy-predictor server with extra env; every server is stopped after."""
    servers: list[Server] = []

    def start(isolated: bool = True, args: tuple[str, ...] = ("serve",),
              port_var: str = "MLDOCK_PORT", wait: bool = True, **extra: str) -> Server:
        """Extra env values of None remove the default (e.g. ``MLDOCK_MODEL_DIR=None``)."""
        env = runtime_env(image_root, toy_src, MLDOCK_PREDICTOR="toy.predict:Predictor",
                          MLDOCK_MODEL_DIR=str(model_dir))
        env.update(extra)
        env = {k: v for k, v in env.items() if v is not None}
        server = Server(env, args, isolated, port_var, wait)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def server(image_root, toy_src, model_dir):
    """One ready toy server shared by a module's read-only route tests."""
    env = runtime_env(image_root, toy_src, MLDOCK_PREDICTOR="toy.predict:Predictor",
                      MLDOCK_MODEL_DIR=str(model_dir))
    srv = Server(env)
    srv.wait_for("/ping", 200)
    yield srv
    srv.stop()


class Runtime:
    """Helpers handed to tests as the ``rt`` fixture (tests do not import conftest)."""

    def __init__(self, image_root: Path, toy_src: Path):
        self.image_root = image_root
        self.toy_src = toy_src

    def env(self, **extra: str) -> dict[str, str]:
        return runtime_env(self.image_root, self.toy_src, **extra)

    @staticmethod
    def cmd(*args: str, isolated: bool = True) -> list[str]:
        return runtime_cmd(*args, isolated=isolated)


@pytest.fixture
def rt(image_root, toy_src) -> Runtime:
    return Runtime(image_root, toy_src)
