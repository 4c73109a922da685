"""``mldock predict --data`` of a 200 MB file (issue 10, item 11): measured, refused or streamed.

A real endpoint on the real engine (a tiny server that advertises ``MaxPayloadInMB`` on
``/execution-parameters`` and counts the bytes it receives) and the real CLI in a subprocess whose
peak RSS is read with ``getrusage(RUSAGE_CHILDREN)`` by a wrapper process of its own (so no other
test's children count). Before the fix the CLI read, decoded and re-encoded the whole file: a
200 MB file peaked at ~3 GB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from mldock.interfaces import DeployRequest
from mldock.local.deploy import LocalDeployer
from mldock.testing.docker import require_docker, require_image

pytestmark = pytest.mark.docker

BASE_IMAGE = os.environ.get("MLDOCK_TEST_BASE_IMAGE", "python:3.11-slim")
FILE_MB = 200
RSS_BOUND_MB = 120  # the CLI's own footprint is ~60 MB; the file is 200 MB

SERVER = '''\
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LIMIT_MB = float(os.environ.get("LIMIT_MB", "6"))


class Handler(BaseHTTPRequestHandler):
    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/execution-parameters":
            self._send(200, {"MaxPayloadInMB": LIMIT_MB})
        else:
            self._send(200, {"status": "ok"})

    def do_POST(self):
        left = int(self.headers.get("Content-Length") or 0)
        received = 0
        while left:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            received += len(chunk)
            left -= len(chunk)
        self._send(200, {"received": received, "type": self.headers.get("Content-Type")})

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
'''

MEASURE = '''\
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
'''


@pytest.fixture(scope="module")
def counting_image(tmp_path_factory):
    client = require_docker()
    require_image(client, BASE_IMAGE)
    context = tmp_path_factory.mktemp("counting-image")
    (context / "server.py").write_text(SERVER)
    (context / "Dockerfile").write_text(
        f'FROM {BASE_IMAGE}\nCOPY server.py /srv/server.py\n'
        'ENTRYPOINT ["python3", "/srv/server.py"]\n')
    tag = f"mldock-test-counting:{uuid.uuid4().hex[:12]}"
    client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    yield tag
    client.images.remove(tag, force=True)
    client.close()


@pytest.fixture
def endpoint(counting_image, tmp_path):
    """A deploy function (limit in MB -> endpoint name) in a project of a unique name; every
    endpoint it made is removed after."""
    project = f"big-{uuid.uuid4().hex[:8]}"
    (tmp_path / "mldock.toml").write_text(
        f'[project]\nname = "{project}"\ntrain = "m.train:train"\npredictor = "m.p:Predictor"\n')
    model = tmp_path / "model"
    model.mkdir()
    (model / "mldock-model.json").write_text("{}")
    deployer = LocalDeployer(tmp_path)
    made: list[str] = []

    def deploy(limit_mb: float) -> str:
        name = f"{project}-{len(made)}"
        made.append(name)
        deployer.deploy(DeployRequest(name=name, image=counting_image, model_uri=str(model),
                                      run_id="r1", environment={"LIMIT_MB": str(limit_mb)},
                                      options={"port": 0, "project": project}))
        return name

    yield deploy
    for name in made:
        deployer.undeploy(name)


def _measured_predict(cwd: Path, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    cli = [sys.executable, "-c", "from mldock.cli.main import main; main()", "predict", *args]
    done = subprocess.run([sys.executable, "-c", MEASURE, *cli], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=True)
    return json.loads(done.stdout)


@pytest.fixture
def big_file(tmp_path) -> Path:
    path = tmp_path / "big.csv"
    subprocess.run(["truncate", "-s", f"{FILE_MB}M", str(path)], check=True)  # sparse: no disk
    return path


def test_over_the_advertised_limit_is_refused_before_reading(endpoint, big_file, tmp_path):
    name = endpoint(6)
    result = _measured_predict(tmp_path, "--name", name, "--data", str(big_file))
    assert result["rc"] == 2, result
    lines = result["stderr"].strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result["stderr"], result["stderr"]
    assert "200.0 MB" in lines[0] and "limit of 6 MB" in lines[0], lines[0]
    print(f"peak RSS of the CLI: {result['maxrss_mb']:.0f} MB")
    assert result["maxrss_mb"] < RSS_BOUND_MB, result["maxrss_mb"]


def test_under_the_limit_is_streamed_from_the_file(endpoint, big_file, tmp_path):
    name = endpoint(FILE_MB + 50)
    result = _measured_predict(tmp_path, "--name", name, "--data", str(big_file))
    assert result["rc"] == 0, result
    answer = json.loads(result["stdout"])
    assert answer == {"received": FILE_MB * 2**20, "type": "text/csv"}
    print(f"peak RSS of the CLI: {result['maxrss_mb']:.0f} MB")
    assert result["maxrss_mb"] < RSS_BOUND_MB, result["maxrss_mb"]
