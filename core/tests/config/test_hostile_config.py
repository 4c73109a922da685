"""Hostile and broken configs through the real CLI: one line naming file, key path and problem.

Every case runs ``mldock config validate`` as a subprocess, as a user (or an attacker who controls
a project folder) would, and checks: exit code 2, exactly one line on stderr that starts with
``error: <file>: <key path>``, no traceback, and no secret echoed. The cases cover issue 10:
secrets in URIs, lists and overlays (item 2), files that are folders, link loops, huge, deep or
non-UTF-8 (item 10), and values only ``build`` used to check (item 12), which now fail ``config
validate``, ``build`` and ``train`` alike before any image is touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

SECRET = "hunter2-" + uuid.uuid4().hex[:8]
"""A value no error may echo."""

BASE = """
[project]
name = "iris"
train = "iris.train:train"
predictor = "iris.predict:Predictor"
"""


def mldock(*args: str, cwd: Path, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, stdin/stderr not terminals, no MLDOCK_* from the caller."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", "from mldock.cli.main import main; main()", *args],
        cwd=cwd, env=full, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        check=False)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a refused command (asserting exit 2 and no traceback)."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert SECRET not in result.stderr + result.stdout
    return lines[0]


# --- the table of cases --------------------------------------------------------------------------

# (case id, text appended to BASE, expected "file: key path" head, fragment of problem or hint)
CASES = [
    # item 2: secrets outside the env: route
    ("storage-uri-with-password", f'[storage]\nuri = "s3://AKIAX:{SECRET}@bucket/models"\n',
     "mldock.toml: storage.uri:", 'uri = "env:NAME"'),
    ("tracking-uri-with-password",
     f'[tracking]\nuri = "mlflow+http://bob:{SECRET}@127.0.0.1:5000"\n',
     "mldock.toml: tracking.uri:", "URI with a password"),
    ("password-uri-in-env-overlay",
     f'[env.prod.tracking]\nuri = "postgresql://bob:{SECRET}@db/runs"\n',
     "mldock.toml: env.prod.tracking.uri:", "URI with a password"),
    ("password-uri-in-data-channel", f'[data]\ntrain = "s3://k:{SECRET}@bucket/train"\n',
     "mldock.toml: data.train:", "env:NAME"),
    ("password-in-index-url", f'[build]\npip_index_url = "https://u:{SECRET}@pypi.example/s"\n',
     "mldock.toml: build.pip_index_url:", "URI with a password"),
    ("secret-key-holding-a-list", f'[hyperparameters]\napi_token = ["{SECRET}"]\n',
     "mldock.toml: hyperparameters.api_token.0:", "looks like a secret"),
    ("secret-key-holding-a-number", "[hyperparameters]\napi_token = 1234567\n",
     "mldock.toml: hyperparameters.api_token:", "env:NAME"),
    ("secret-in-list-of-tables",
     f'[deploy.registry]\nauths = [{{ host = "r", password = "{SECRET}" }}]\n',
     "mldock.toml: deploy.registry.auths.0.password:", "looks like a secret"),
    ("secret-in-nested-lists", f'[build.docker]\naccess_tokens = [["{SECRET}"]]\n',
     "mldock.toml: build.docker.access_tokens.0.0:", "env:NAME"),
    ("camel-case-secret-key", f'[storage.s3]\napiToken = "{SECRET}"\n',
     "mldock.toml: storage.s3.apiToken:", "looks like a secret"),
    # item 10: values that passed validation
    ("empty-storage-uri", '[storage]\nuri = ""\n', "mldock.toml: storage.uri:",
     "must not be empty"),
    ("sqlite-uri-without-file", '[tracking]\nuri = "sqlite:///"\n', "mldock.toml: tracking.uri:",
     "names no database file"),
    # item 12: what only build checked
    ("shell-in-system-package", '[build]\nsystem_packages = ["curl; rm -rf /"]\n',
     "mldock.toml: build.system_packages:", "not a Debian package name"),
    ("upper-case-system-package", '[build]\nsystem_packages = ["LibGomp1"]\n',
     "mldock.toml: build.system_packages:", "not a Debian package name"),
    ("shell-in-base-image", '[build]\nbase_image = "curl; rm -rf /"\n',
     "mldock.toml: build.base_image:", "not a valid image reference"),
    ("upper-case-base-image", '[build]\nbase_image = "Python:3.11"\n',
     "mldock.toml: build.base_image:", "not a valid image reference"),
    ("base-image-bad-tag", '[build]\nbase_image = "python:-slim"\n',
     "mldock.toml: build.base_image:", "not a valid image reference"),
    ("index-url-not-http", '[build]\npip_index_url = "ftp://mirror/simple"\n',
     "mldock.toml: build.pip_index_url:", "http(s) URL"),
    ("source-outside-project", 'source = "../elsewhere"\n', "mldock.toml: project.source:",
     "outside the project folder"),
    ("requirements-missing", 'requirements = "requirements.txt"\n',
     "mldock.toml: project.requirements:", "file not found"),
    ("dockerfile-missing", '[build]\ndockerfile = "docker/Dockerfile"\n',
     "mldock.toml: build.dockerfile:", "file not found"),
    ("bad-package-in-env-overlay", '[env.gpu.build]\nsystem_packages = ["a b"]\n',
     "mldock.toml: env.gpu.build.system_packages:", "not a Debian package name"),
]
@pytest.mark.parametrize(("case", "extra", "head", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_config_validate_refuses_in_one_line(tmp_path, case, extra, head, fragment):
    (tmp_path / "mldock.toml").write_text(BASE + extra)
    line = one_line_error(mldock("config", "validate", cwd=tmp_path))
    assert line.startswith(f"error: {head}"), line
    assert fragment in line, line


def test_there_are_at_least_twenty_hostile_kinds():
    assert len(CASES) >= 20


@pytest.mark.parametrize("command", [("build",), ("train", "--no-container"), ("config", "show")])
def test_every_command_that_loads_the_config_refuses_alike(tmp_path, command):
    """``build`` and ``train`` stop at the config, with validate's line, before any engine call."""
    (tmp_path / "mldock.toml").write_text(BASE + '[build]\nsystem_packages = ["curl; rm -rf /"]\n')
    expected = one_line_error(mldock("config", "validate", cwd=tmp_path))
    assert one_line_error(mldock(*command, cwd=tmp_path)) == expected


# --- what must keep passing ----------------------------------------------------------------------

ACCEPTED = """
[build]
base_image = "{image}"
system_packages = ["libgomp1", "curl=7.88.1-10", "libc6:amd64", "g++", "ca-certificates"]
pip_index_url = "https://pypi.example.com/simple"

[hyperparameters]
max_tokens = 512
pad_token = "[PAD]"
tokenizer = "bert-base-uncased"
use_auth_token = true
api_token = "env:HF_TOKEN"
"""
IMAGES = ["python:3.11-slim", "localhost:5000/team/base:1", "registry.example.com:443/a/b_c__d-e",
          "ghcr.io/org/img@sha256:" + "a" * 64, "[::1]:5000/base:v1.2", "ubuntu"]


@pytest.mark.parametrize("image", IMAGES)
def test_valid_names_and_ordinary_hyperparameters_pass(tmp_path, image):
    """Model hyperparameters named like tokens (``max_tokens``) are not secrets; real image
    references and Debian names pass."""
    (tmp_path / "mldock.toml").write_text(BASE + ACCEPTED.format(image=image))
    result = mldock("config", "validate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_uri_with_password_comes_through_env_and_is_never_shown(tmp_path):
    """``uri = "env:NAME"`` is the route for a URI with credentials: validate reads it, ``config
    show`` prints the reference, and an error about that URI masks the password."""
    (tmp_path / "mldock.toml").write_text(BASE + '[tracking]\nuri = "env:RUNS_URI"\n')
    secret_uri = f"mlflow+http://bob:{SECRET}@127.0.0.1:9"
    env = {"RUNS_URI": secret_uri}
    assert mldock("config", "validate", cwd=tmp_path, env=env).returncode == 0
    shown = mldock("config", "show", "--json", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert SECRET not in shown.stdout and '"uri": "env:RUNS_URI"' in shown.stdout
    # the mlflow tracker refuses credentials in its URI when a command builds it: masked
    used = mldock("runs", "list", cwd=tmp_path, env=env)
    assert used.returncode != 0 and SECRET not in used.stderr + used.stdout, used.stderr
    assert "Traceback" not in used.stderr
    missing = one_line_error(mldock("config", "validate", cwd=tmp_path))
    assert missing.startswith("error: mldock.toml: tracking.uri: environment variable 'RUNS_URI'")


def test_a_password_from_env_is_masked_in_errors(tmp_path):
    """A URI read from the environment that no backend knows: the error names it, masked."""
    (tmp_path / "mldock.toml").write_text(BASE + '[storage]\nuri = "env:STORE_URI"\n')
    line = one_line_error(mldock("config", "validate", cwd=tmp_path,
                                 env={"STORE_URI": f"ftp://bob:{SECRET}@host/x"}))
    assert line.startswith("error: mldock.toml: storage.uri: unknown storage URI scheme 'ftp'")
    assert "ftp://bob:***@host/x" in line


# --- the file itself ------------------------------------------------------------------------------


def test_deep_toml_is_one_line(tmp_path):
    depth = 50_000
    (tmp_path / "mldock.toml").write_text(BASE + "[hyperparameters]\nx = " + "[" * depth
                                          + "]" * depth + "\n")
    line = one_line_error(mldock("config", "validate", cwd=tmp_path))
    assert line.startswith("error: mldock.toml: invalid TOML: nested deeper than"), line


def test_deep_inline_tables_are_one_line(tmp_path):
    depth = 50_000
    (tmp_path / "mldock.toml").write_text(BASE + "[hyperparameters]\nx = " + "{a = " * depth
                                          + "1" + "}" * depth + "\n")
    line = one_line_error(mldock("config", "validate", cwd=tmp_path))
    assert "nested deeper than" in line, line


def test_nesting_that_parses_but_is_too_deep_names_the_key(tmp_path):
    (tmp_path / "mldock.toml").write_text(BASE + "[build.docker]\nx = " + "[" * 60 + "]" * 60)
    line = one_line_error(mldock("config", "validate", cwd=tmp_path))
    assert line.startswith("error: mldock.toml: build.docker.x."), line
    assert "nested deeper than 32 levels" in line


def test_config_that_is_a_folder(tmp_path):
    (tmp_path / "mldock.toml").mkdir()
    line = one_line_error(mldock("config", "validate", cwd=tmp_path))
    assert line.startswith("error: mldock.toml: is a folder, not a config file"), line


def test_config_that_links_to_itself(tmp_path):
    (tmp_path / "mldock.toml").symlink_to("mldock.toml")
    line = one_line_error(mldock("runs", "list", cwd=tmp_path))
    assert line == "error: mldock.toml: symbolic link loop", line


def test_config_option_on_a_link_loop(tmp_path):
    (tmp_path / "a.toml").symlink_to("b.toml")
    (tmp_path / "b.toml").symlink_to("a.toml")
    line = one_line_error(mldock("--config", "a.toml", "config", "validate", cwd=tmp_path))
    assert line == "error: a.toml: symbolic link loop", line


def test_config_that_is_a_broken_link(tmp_path):
    (tmp_path / "mldock.toml").symlink_to(tmp_path / "gone.toml")
    line = one_line_error(mldock("config", "validate", cwd=tmp_path))
    assert "mldock.toml: broken symbolic link" in line, line


def test_pyproject_with_syntax_error_in_its_mldock_table(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.mldock.project]\nname = "iris\n')
    line = one_line_error(mldock("config", "validate", cwd=tmp_path))
    assert line.startswith("error: pyproject.toml: invalid TOML:"), line


def test_broken_pyproject_is_named_when_no_config_is_found(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.black\n')
    line = one_line_error(mldock("config", "validate", cwd=tmp_path))
    assert "no mldock.toml" in line and "pyproject.toml is not valid TOML" in line, line


def test_huge_config_is_refused_before_parsing(tmp_path):
    (tmp_path / "mldock.toml").write_text(BASE + "#" * (2 * 1024 * 1024) + "\n")
    line = one_line_error(mldock("config", "validate", cwd=tmp_path))
    assert line.startswith("error: mldock.toml: larger than 1024 KiB"), line


def test_non_utf8_config(tmp_path):
    (tmp_path / "mldock.toml").write_bytes(BASE.encode() + b'\n[build]\nimage = "\xff\xfe"\n')
    line = one_line_error(mldock("config", "validate", cwd=tmp_path))
    assert "not UTF-8" in line, line


@pytest.mark.parametrize("key", ["evil\nerror: forged line", "red\x1b[31mtext", "bell\x07"])
def test_keys_with_control_characters_are_escaped(tmp_path, key):
    quoted = "".join(f"\\u{ord(ch):04x}" if ord(ch) < 32 or ord(ch) == 127 else ch for ch in key)
    (tmp_path / "mldock.toml").write_text(BASE + f'"{quoted}" = 1\n')
    line = one_line_error(mldock("config", "validate", cwd=tmp_path))
    assert line.startswith("error: mldock.toml: project."), line
    assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in line), repr(line)
    assert repr(key)[1:-1] in line, line
