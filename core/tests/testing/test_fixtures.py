"""The test harness itself (``mldock.testing.fixtures``): real processes, sockets and servers.

Each test checks one promise the suites rely on: a server is started in its own process group and
stopped with all of it, a server that dies shows its log, a missing program skips (or fails under
CI), the registry with auth refuses an unauthenticated push, and each emulator really answers.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import socket
import sys
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mldock.testing.docker import REQUIRE_ENV
from mldock.testing.processes import ProcessSet, free_port, http_request, port_open, require_program

PY = sys.executable
# a server that forks a child into its own process group, then serves HTTP until killed
FORKING_SERVER = """
import http.server, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[2], "w").write(str(child.pid))
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])),
                                http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie awaiting its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid: int) -> bool:
    for _ in range(100):
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_free_port_is_bindable_on_loopback():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # raises if the helper handed out a taken port
    assert not port_open(port)


def test_server_is_ready_then_stopped_with_its_whole_process_group(tmp_path):
    processes = ProcessSet(tmp_path / "logs")
    port, child_file = free_port(), tmp_path / "child.pid"
    server = processes.start("forking", [PY, "-c", FORKING_SERVER, str(port), str(child_file)],
                             port=port, health_url=f"http://127.0.0.1:{port}/", cwd=tmp_path)
    assert http_request("GET", f"{server.url}/")[0] == 200
    assert os.getpgid(server.process.pid) == server.process.pid  # a group of its own
    child = int(child_file.read_text())
    assert alive(child) and os.getpgid(child) == server.process.pid
    processes.stop_all()
    assert server.process.poll() is not None and processes.started == []
    assert wait_gone(child), "the server's child outlived the stop"
    assert not port_open(port)


def test_server_ready_on_a_port_without_a_health_url(tmp_path):
    processes = ProcessSet(tmp_path)
    port = free_port()
    server = processes.start("http", [PY, "-m", "http.server", "-b", "127.0.0.1", str(port)],
                             port=port, cwd=tmp_path)
    assert port_open(port)
    server.stop()
    assert not server.running()


def test_a_server_that_dies_fails_the_test_with_its_log_tail(tmp_path):
    processes = ProcessSet(tmp_path)
    script = "import sys; print('weights are corrupt: marker-41', flush=True); sys.exit(3)"
    with pytest.raises(pytest.fail.Exception) as info:
        processes.start("dying", [PY, "-c", script], port=free_port())
    message = str(info.value)
    assert "dying exited with code 3" in message
    assert "weights are corrupt: marker-41" in message
    assert str(tmp_path) in message  # names the log file, which stays for a look


def test_a_server_that_never_answers_is_stopped_after_the_timeout(tmp_path):
    processes = ProcessSet(tmp_path)
    script = "import time; print('still loading', flush=True); time.sleep(600)"
    with pytest.raises(pytest.fail.Exception, match="was not ready after 1 s") as info:
        processes.start("silent", [PY, "-c", script], port=free_port(), timeout=1)
    assert "still loading" in str(info.value)
    (log,) = tmp_path.glob("silent-*.log")
    assert log.read_text() == "still loading\n"


@pytest.mark.parametrize(("required", "outcome"), [("", pytest.skip.Exception),
                                                    ("1", pytest.fail.Exception)])
def test_a_missing_program_skips_or_fails_under_ci(monkeypatch, required, outcome):
    monkeypatch.setenv(REQUIRE_ENV, required)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(outcome, match="no-such-server is not installed: apt-get install it"):
        require_program("no-such-server", "apt-get install it")


def test_a_program_beside_the_interpreter_is_found_first():
    assert require_program(Path(PY).name, "-") == PY


# --- the registry ------------------------------------------------------------------------------


def test_registry_without_auth_answers_anyone(registry):
    assert http_request("GET", f"{registry.url}/v2/")[0] == 200
    assert registry.auth_config() is None
    assert registry.tags(f"nothing-{uuid.uuid4().hex[:8]}") == []


def test_registry_with_auth_refuses_requests_without_credentials(auth_registry):
    assert auth_registry.get("/v2/", authenticated=False)[0] == 401
    assert auth_registry.get("/v2/")[0] == 200
    wrong = base64.b64encode(f"{auth_registry.username}:wrong".encode()).decode()
    assert http_request("GET", f"{auth_registry.url}/v2/",
                        headers={"Authorization": f"Basic {wrong}"})[0] == 401


@pytest.fixture
def tiny_image(tmp_path):
    """A one-file image built FROM scratch (no base image, nothing pulled), removed after."""
    from mldock.testing.docker import require_docker

    client = require_docker()
    (tmp_path / "marker").write_text(uuid.uuid4().hex)
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY marker /marker\n")
    image, _ = client.images.build(path=str(tmp_path), rm=True,
                                   labels={"mldock.test": "harness"})
    yield client, image
    from docker.errors import ImageNotFound

    with contextlib.suppress(ImageNotFound):  # removing its last tag may have removed it
        client.images.remove(image.id, force=True)


@pytest.mark.docker
def test_registry_with_auth_refuses_an_unauthenticated_push(auth_registry, tiny_image):
    client, image = tiny_image
    repository = f"{auth_registry.host}/harness-{uuid.uuid4().hex[:8]}"
    image.tag(repository, "v1")
    refused = [line for line in client.images.push(repository, "v1", stream=True, decode=True,
                                                   auth_config={"username": "x", "password": "y"})
               if "error" in line]
    assert refused, "the registry accepted a push with wrong credentials"
    assert auth_registry.tags(repository.split("/", 1)[1]) == []
    lines = list(client.images.push(repository, "v1", stream=True, decode=True,
                                    auth_config=auth_registry.auth_config()))
    assert not [line for line in lines if "error" in line], lines
    name = repository.split("/", 1)[1]
    assert auth_registry.tags(name) == ["v1"]
    assert auth_registry.manifest_digest(name, "v1").startswith("sha256:")
    client.images.remove(f"{repository}:v1")


# --- emulators ---------------------------------------------------------------------------------


def bucket_names(url: str) -> str:
    return http_request("GET", f"{url}/")[2].decode()


def test_moto_fixture_starts_each_test_on_an_empty_account(moto_server, request):
    name = f"harness-{uuid.uuid4().hex[:8]}"
    assert http_request("PUT", f"{moto_server.url}/{name}")[0] == 200  # S3 CreateBucket
    assert name in bucket_names(moto_server.url)
    moto = request.getfixturevalue("moto")  # what a test asking for `moto` gets
    assert moto is moto_server
    assert name not in bucket_names(moto.url)


def test_start_moto_gives_a_separate_server(start_moto, moto_server):
    other = start_moto()
    assert other.port != moto_server.port
    name = f"harness-{uuid.uuid4().hex[:8]}"
    http_request("PUT", f"{other.url}/{name}")
    assert name in bucket_names(other.url) and name not in bucket_names(moto_server.url)


def test_aws_sandbox_hides_the_developers_aws_settings(monkeypatch, request):
    monkeypatch.setenv("AWS_PROFILE", "someones-real-profile")
    home = request.getfixturevalue("aws_sandbox")
    assert "AWS_PROFILE" not in os.environ
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert Path(os.environ["AWS_SHARED_CREDENTIALS_FILE"]) == home / "credentials"
    assert (home / "credentials").read_text() == ""


def test_gcs_emulator_creates_and_lists_buckets(gcs_emulator):
    name = f"harness-{uuid.uuid4().hex[:8]}"
    status, _, _ = http_request("POST", f"{gcs_emulator}/storage/v1/b",
                                f'{{"name": "{name}"}}'.encode(),
                                {"Content-Type": "application/json"})
    assert status == 200
    assert name in http_request("GET", f"{gcs_emulator}/storage/v1/b?project=test")[2].decode()


def account_sas(account: str, key: str) -> str:
    """An account SAS (blob service; read, write, list, create) signed with Azurite's key."""
    expiry = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    fields = {"sv": "2019-12-12", "ss": "b", "srt": "sco", "sp": "rwlac", "se": expiry,
              "spr": "http"}
    to_sign = "\n".join([account, fields["sp"], fields["ss"], fields["srt"], "", expiry, "",
                         fields["spr"], fields["sv"], ""])
    signature = hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()
    return urllib.parse.urlencode({**fields, "sig": base64.b64encode(signature).decode()})


def test_azurite_creates_and_lists_containers(azurite):
    sas = account_sas(azurite.account, azurite.account_key)
    name = f"harness-{uuid.uuid4().hex[:8]}"
    assert http_request("GET", f"{azurite.blob_endpoint}?comp=list")[0] == 403  # unsigned
    status, _, body = http_request("PUT", f"{azurite.blob_endpoint}/{name}?restype=container&{sas}",
                                   b"", {"x-ms-version": "2019-12-12"})
    assert status == 201, body
    status, _, body = http_request("GET", f"{azurite.blob_endpoint}?comp=list&{sas}",
                                   headers={"x-ms-version": "2019-12-12"})
    assert status == 200 and f"<Name>{name}</Name>" in body.decode()
    assert f"BlobEndpoint={azurite.blob_endpoint};" in azurite.connection_string
