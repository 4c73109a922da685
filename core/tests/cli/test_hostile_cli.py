"""Hostile command lines through the real CLI: one line, a non-zero exit, nothing secret kept.

Covers issue 10: secrets given with ``-p`` are refused before a run exists (item 2); click's usage
errors are one plain line on a pipe and keep typer's box on a terminal; ``init --template`` with a
git URL that cannot be fetched fails fast in one line (item 10). No internet is used: the git URLs
are a missing local path, a closed loopback port, and loopback servers that refuse or stall.
"""

from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from .conftest import PROJECT

SECRET = "hunter2-" + uuid.uuid4().hex[:8]
MAIN = "from mldock.cli.main import main; main()"


def mldock(*args: str, cwd: Path, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    full.update(env or {})
    return subprocess.run([sys.executable, "-c", MAIN, *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
                          check=False)


def one_line_error(result: subprocess.CompletedProcess, code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert SECRET not in result.stderr + result.stdout
    return lines[0]


def files_containing(root: Path, needle: str) -> list[Path]:
    """Every file under ``root`` whose bytes contain ``needle`` (runs database included)."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and needle.encode() in path.read_bytes():
            found.append(path)
    return found


# --- item 2: -p overrides -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trainable(tmp_path_factory) -> Path:
    """A project from the minimal template, trained with ``--no-container`` (no Docker)."""
    root = tmp_path_factory.mktemp("hostile-cli")
    name = f"hostile{uuid.uuid4().hex[:8]}"
    created = mldock("init", name, "--template", "minimal", "--no-input", cwd=root)
    assert created.returncode == 0, created.stderr
    return root / name


@pytest.mark.parametrize(("override", "key"), [
    (f"api_token={SECRET}", "api_token"),
    (f"hfToken={SECRET}", "hfToken"),
    (f'db_password=["{SECRET}"]', "db_password"),
    (f"db=postgresql://bob:{SECRET}@db/x", "db"),
])
def test_secret_override_is_refused_and_never_stored(trainable, override, key):
    result = mldock("train", "-q", "--no-container", "-p", override, cwd=trainable)
    line = one_line_error(result)
    assert line.startswith(f"error: -p {key}: "), line
    assert "env:NAME" in line
    assert files_containing(trainable, SECRET) == []


def test_ordinary_override_named_like_a_token_trains(trainable):
    """``max_tokens`` is a hyperparameter, not a secret: it trains and is recorded."""
    result = mldock("train", "-q", "--no-container", "-p", "max_tokens=5", cwd=trainable)
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip()
    shown = mldock("runs", "show", run_id, "--json", cwd=trainable)
    assert '"max_tokens": 5' in shown.stdout, shown.stdout


def test_env_reference_is_what_lineage_stores(trainable):
    """A URI given as ``env:NAME`` is recorded in the run's lineage as the reference only."""
    config = trainable / "mldock.toml"
    original = config.read_text()
    runs_db = trainable / ".mldock" / f"runs-{uuid.uuid4().hex[:6]}.db"
    try:
        config.write_text(original + '\n[tracking]\nuri = "env:RUNS_URI"\n')
        result = mldock("train", "-q", "--no-container", cwd=trainable,
                        env={"RUNS_URI": f"sqlite:///{runs_db}"})
        assert result.returncode == 0, result.stderr
        shown = mldock("runs", "show", result.stdout.strip(), "--json", cwd=trainable,
                       env={"RUNS_URI": f"sqlite:///{runs_db}"})
        assert shown.returncode == 0, shown.stderr
        assert '"uri": "env:RUNS_URI"' in shown.stdout, shown.stdout
    finally:
        config.write_text(original)


def test_password_printed_by_training_is_masked_in_the_run_log(trainable):
    """Training code that prints a URI with credentials: the console and the run's log file
    keep the URI with its password masked."""
    train_py = next((trainable / "src").glob("*/train.py"))
    original = train_py.read_text()
    try:
        train_py.write_text(original + (
            "\n_original_train = train\n\n\ndef train(ctx):\n"
            f"    print('connecting to postgresql://bob:{SECRET}@db/x', flush=True)\n"
            "    return _original_train(ctx)\n"))
        result = mldock("train", "--no-container", cwd=trainable)
        assert result.returncode == 0, result.stderr
        assert "postgresql://bob:***@db/x" in result.stderr
        assert SECRET not in result.stderr + result.stdout
        logs = list((trainable / ".mldock").rglob("train.log"))
        assert any("postgresql://bob:***@db/x" in log.read_text() for log in logs)
        assert files_containing(trainable / ".mldock", SECRET) == []
    finally:
        train_py.write_text(original)


# --- item 10: usage errors ------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "expected"), [
    (("config", "validatx"),
     "error: No such command 'validatx'. Did you mean 'validate'? (see 'mldock config -h')"),
    (("--bogus",), "error: No such option: --bogus (see 'mldock -h')"),
    (("config", "show", "-e"), "error: Option '-e' requires an argument."),
])
def test_usage_error_on_a_pipe_is_one_plain_line(tmp_path, args, expected):
    assert one_line_error(mldock(*args, cwd=tmp_path)) == expected


def test_usage_error_on_a_terminal_keeps_the_box(tmp_path):
    """People at a terminal still get typer's framed error with the usage line."""
    leader, follower = pty.openpty()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
        env.update(COLUMNS="80", TERM="xterm")
        proc = subprocess.run([sys.executable, "-c", MAIN, "config", "validatx"], cwd=tmp_path,
                              env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=follower, timeout=120, check=False)
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 2
    assert "╭" in shown and "No such command 'validatx'" in shown, shown
    assert "Usage:" in shown


def test_no_arguments_still_prints_help(tmp_path):
    result = mldock(cwd=tmp_path)
    assert "Usage" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


# --- item 10: init from a git URL that cannot be fetched ------------------------------------------


@pytest.fixture
def closed_port():
    """A loopback port that refuses connections: bound (so nobody else takes it), not listening."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


class _NeedsPassword(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="templates"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def password_server():
    server = HTTPServer(("127.0.0.1", 0), _NeedsPassword)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _assert_fetch_failed(tmp_path: Path, url: str, *fragments: str) -> None:
    line = one_line_error(mldock("init", "demo", "--template", url, "--no-input", cwd=tmp_path))
    assert line.startswith("error: cannot fetch template "), line
    for fragment in fragments:
        assert fragment in line, line
    assert not (tmp_path / "demo").exists()


def test_init_from_a_missing_local_repository(tmp_path):
    _assert_fetch_failed(tmp_path, "file:///nonexistent-" + uuid.uuid4().hex + ".git",
                         "does not appear to be a git repository")


def test_init_from_a_closed_port(tmp_path, closed_port):
    _assert_fetch_failed(tmp_path, f"http://127.0.0.1:{closed_port}/x.git", "Failed to connect")


def test_init_with_credentials_in_the_url_masks_them(tmp_path, closed_port):
    _assert_fetch_failed(tmp_path, f"http://bob:{SECRET}@127.0.0.1:{closed_port}/x.git",
                         "bob:***@")


def test_init_never_waits_for_a_password(tmp_path, password_server):
    """A server asking for credentials: git must fail instead of prompting (stdin is no help)."""
    _assert_fetch_failed(tmp_path, f"http://127.0.0.1:{password_server}/x.git",
                         "Authentication failed")


@pytest.mark.slow
def test_init_from_a_server_that_never_answers(tmp_path):
    """A server that accepts and then says nothing: git's low-speed limit ends the clone."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []

    def accept() -> None:
        try:
            while True:
                accepted.append(server.accept()[0])
        except OSError:
            return

    threading.Thread(target=accept, daemon=True).start()
    try:
        _assert_fetch_failed(tmp_path, f"http://127.0.0.1:{server.getsockname()[1]}/x.git",
                             "too slow")
    finally:
        server.close()
        for conn in accepted:
            conn.close()


def test_project_fixture_still_validates(tmp_path):
    """The shared sample project stays valid under the stricter checks."""
    (tmp_path / "mldock.toml").write_text(PROJECT)
    assert mldock("config", "validate", cwd=tmp_path).returncode == 0
